"""`manage.py sandbox_seed`: demo assistants, threads and runs, conversations and responses; safe to rerun."""

from django.core.management.base import BaseCommand

from sandbox import demo


class Command(BaseCommand):
    help = (
        "Creates the sandbox's demo assistants, threads and conversations (once) and starts fresh live runs "
        "and responses."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--big", action="store_true", help="also create a thread with 1,000 finished runs"
        )

    def handle(self, *args, big: bool = False, **options):
        summary = demo.seed(big=big)
        self.stdout.write(
            f"sandbox_seed: {summary.assistants} demo assistants, {summary.new_threads} new threads, "
            f"{summary.live_runs} live runs started; statuses: {', '.join(sorted(summary.statuses))}; "
            f"step types: {', '.join(sorted(summary.step_types))}; "
            f"{len(summary.responses.conversations)} demo conversations and "
            f"{sum(map(len, summary.responses.responses.values()))} demo responses "
            f"({summary.responses.new} new demos, {summary.responses.live} live responses started); "
            f"response statuses: {', '.join(sorted(summary.response_statuses))}; "
            f"item types: {', '.join(sorted(summary.item_types))}."
        )

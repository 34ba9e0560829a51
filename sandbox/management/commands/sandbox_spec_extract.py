"""`manage.py sandbox_spec_extract`: rebuilds sandbox/spec_schemas.json from the vendored OpenAI spec."""

from pathlib import Path

from django.core.management.base import BaseCommand

from sandbox import spec_extract


class Command(BaseCommand):
    help = "Regenerates the sandbox's extract of the spec's request schemas (sandbox/spec_schemas.json)."

    def add_arguments(self, parser):
        parser.add_argument("--spec", type=Path, default=spec_extract.DEFAULT_SPEC, help="the OpenAPI YAML")
        parser.add_argument(
            "--check", action="store_true", help="only report whether the committed extract is up to date"
        )

    def handle(self, *args, spec: Path, check: bool, **options):
        text = spec_extract.generate(spec)
        current = spec_extract.EXTRACT_PATH.read_text() if spec_extract.EXTRACT_PATH.exists() else ""
        if check:
            if text != current:
                raise SystemExit(
                    f"{spec_extract.EXTRACT_PATH} is out of date: run `manage.py sandbox_spec_extract`"
                )
            self.stdout.write(f"{spec_extract.EXTRACT_PATH.name} is up to date.")
            return
        spec_extract.EXTRACT_PATH.write_text(text)
        self.stdout.write(f"Wrote {spec_extract.EXTRACT_PATH} ({len(text):,} characters) from {spec}.")

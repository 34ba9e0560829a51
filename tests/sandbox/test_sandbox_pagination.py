"""Paging big lists in-process: total, stable order; one indexed query per page of a big thread or run."""

import pytest

from sandbox.models import Assistant, Run, RunStep, Thread, new_id
from sandbox.pagination import ListParams, beyond, page

pytestmark = pytest.mark.django_db


@pytest.fixture
def big_thread():
    assistant = Assistant.objects.create(public_id=new_id("asst_"), created_at=1, model="gpt-4o")
    thread = Thread.objects.create(public_id=new_id("thread_"), created_at=1)
    # Ten runs per second of created_at, so the seq tie-break decides most of the order.
    Run.objects.bulk_create(
        Run(
            public_id=new_id("run_"),
            thread=thread,
            assistant=assistant,
            created_at=1_000 + n // 10,
            status="completed",
            model="gpt-4o",
            script="answer",
            speed=1,
            phase_started=0,
        )
        for n in range(1_200)
    )
    run = Run.objects.filter(thread=thread).first()
    RunStep.objects.bulk_create(
        RunStep(
            public_id=new_id("step_"),
            run=run,
            thread=thread,
            assistant=assistant,
            created_at=2_000,
            step_type="message_creation",
            status="completed",
        )
        for _ in range(650)
    )
    return thread, run


def _walk(qs, **params) -> list[str]:
    ids, after = [], None
    while True:
        rows, has_more = page(qs, ListParams(limit=100, after=after, **params))
        ids += [r.public_id for r in rows]
        if not has_more:
            return ids
        after = rows[-1].public_id


def test_walking_pages_visits_every_run_once_in_order(big_thread):
    thread, _ = big_thread
    qs = Run.objects.filter(thread=thread)
    newest_first = _walk(qs)
    assert newest_first == list(qs.order_by("-created_at", "-seq").values_list("public_id", flat=True))
    assert _walk(qs, order="asc") == newest_first[::-1]


def test_before_pages_back_towards_the_start(big_thread):
    _, run = big_thread
    qs = RunStep.objects.filter(run=run)
    ordered = list(qs.order_by("created_at", "seq").values_list("public_id", flat=True))
    rows, has_more = page(qs, ListParams(limit=5, order="asc", before=ordered[300]))
    assert [r.public_id for r in rows] == ordered[295:300] and has_more
    rows, _ = page(qs, ListParams(limit=100, order="asc", after=ordered[10], before=ordered[14]))
    assert [r.public_id for r in rows] == ordered[11:14]


def test_a_page_is_one_query(big_thread, django_assert_num_queries):
    thread, run = big_thread
    middle_run = Run.objects.filter(thread=thread).order_by("seq")[600].public_id
    with django_assert_num_queries(1):
        page(Run.objects.filter(thread=thread), ListParams(limit=100, after=middle_run))
    middle_step = RunStep.objects.filter(run=run).order_by("seq")[300].public_id
    with django_assert_num_queries(1):
        page(RunStep.objects.filter(run=run), ListParams(limit=100, order="asc", after=middle_step))


def test_a_page_uses_the_list_index(big_thread):
    thread, run = big_thread
    cases = [
        (Run.objects.filter(thread=thread), "sandbox_run_order"),
        (RunStep.objects.filter(run=run), "sandbox_step_order"),
    ]
    for qs, index in cases:
        cursor = qs.order_by("seq")[300].public_id
        plan = qs.filter(beyond(qs, cursor, later=False)).order_by("-created_at", "-seq")[:101].explain()
        assert index in plan, plan

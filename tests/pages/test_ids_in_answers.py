"""The URL's ids are the truth on every page: an answer that names another run or thread is an upstream
error page (or banner), and nothing on it links to, or acts on, the id the answer named."""

from __future__ import annotations

from tests.pages.conftest import HX, text
from tests.pages.test_strings import serve_sent
from tests.pages.test_untrusted_data import R, T, run_json, step_json


async def test_a_run_answered_as_another_run_is_an_error_page_without_its_id(viewer_client, faults):
    serve_sent(faults, run=run_json(id="run_elsewhere"))

    response = await viewer_client.get(f"/threads/{T}/runs/{R}/")

    assert response.status_code == 502
    body = text(response)
    assert "The upstream answered with a run “run_elsewhere” where “run_fake01” was asked for" in body
    assert 'href="/threads/thread_fake01/runs/run_elsewhere' not in response.content.decode()


async def test_a_run_of_another_thread_in_the_timeline_is_a_banner_in_place(viewer_client, faults):
    serve_sent(faults, run=run_json(id="run_other01", thread_id="thread_other01"))

    response = await viewer_client.get(f"/threads/{T}/?part=timeline", headers=HX)

    assert response.status_code == 200
    assert 'class="banner' in response.content.decode()
    assert "thread “thread_other01” where “thread_fake01” was asked for" in text(response)
    assert 'id="run-run_other01"' not in response.content.decode()


async def test_a_step_of_another_run_is_refused_on_the_steps_partial(viewer_client, faults):
    serve_sent(
        faults,
        run=run_json(),
        steps=[step_json("step_fake01", {"type": "message_creation"}, run_id="run_other01")],
    )

    response = await viewer_client.get(f"/threads/{T}/runs/{R}/?part=steps", headers=HX)

    assert 'class="banner' in response.content.decode()
    assert "run “run_other01” where “run_fake01” was asked for" in text(response)
    assert 'id="step_fake01"' not in response.content.decode()

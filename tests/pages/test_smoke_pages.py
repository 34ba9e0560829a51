"""A first look at each page against the sandbox over HTTP (the detailed tests live beside this file)."""

from tests.fixtures import csrf_token


async def test_a_thread_run_and_step_page_render_for_a_finished_run(operator_client, make_run, wait_for):
    run = make_run("code", speed=50)
    wait_for(run, "completed")
    thread = await operator_client.get(f"/threads/{run.thread_id}/")
    assert thread.status_code == 200
    timeline = await operator_client.get(
        f"/threads/{run.thread_id}/?part=timeline", headers={"HX-Request": "true"}
    )
    assert run.run_id in timeline.content.decode()
    page = await operator_client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/")
    assert page.status_code == 200
    steps = await operator_client.get(
        f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers={"HX-Request": "true"}
    )
    assert "code interpreter" in steps.content.decode()
    assert await csrf_token(operator_client)

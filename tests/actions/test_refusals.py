"""Who may act: anonymous users log in, viewers and read-only deployments get 403, forged or bad requests
change nothing. Every refusal is checked to reach no upstream and to leave no audit record."""

import os

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import AsyncClient

from tests.actions.conftest import outputs_form, post_form, records, run_path, sandbox_run, text

ACTIONS = ["cancel", "submit tool outputs", "edit metadata", "start a run", "create thread and run"]


@pytest.fixture
def action_forms(module_waiting_run, upstream):
    """Each action's page on one waiting run, with a form that an operator could submit successfully."""
    run, calls = module_waiting_run
    return run, {
        "cancel": (run_path(run, "cancel"), {"reason": "Stop"}),
        "submit tool outputs": (run_path(run, "submit"), outputs_form(calls, get_weather="1", get_time="2")),
        "edit metadata": (run_path(run, "metadata"), {"key_0": "forged", "value_0": "yes"}),
        "start a run": (f"/threads/{run.thread_id}/runs/new/", {"assistant_id": run.assistant_id}),
        "create thread and run": ("/new/", {"assistant_id": run.assistant_id, "message": "Hi"}),
    }


async def assert_nothing_changed(upstream, spy, run):
    assert spy.calls.call_count == 0, [str(c.request) for c in spy.calls]
    assert await records() == []
    now = sandbox_run(upstream, run)
    assert now["status"] == "requires_action"
    assert "forged" not in now["metadata"]


@pytest.mark.parametrize("action", ACTIONS)
async def test_anonymous_visitors_are_sent_to_log_in(action, anon_client, action_forms, upstream, spy):
    run, forms = action_forms
    path, form = forms[action]

    page = await anon_client.get(path)
    response = await post_form(anon_client, path, form)

    for answer in (page, response):
        assert answer.status_code == 302
        assert answer["Location"].startswith("/accounts/login/?next=")
    await assert_nothing_changed(upstream, spy, run)


@pytest.mark.parametrize("action", ACTIONS)
async def test_viewers_get_403_on_get_and_post_and_nothing_reaches_the_upstream(
    action, viewer_client, action_forms, upstream, spy
):
    run, forms = action_forms
    path, form = forms[action]

    page = await viewer_client.get(path)
    response = await post_form(viewer_client, path, form)

    for answer in (page, response):
        assert answer.status_code == 403
        assert "Your role can look but not act on runs. Ask an admin for the operator role." in text(answer)
    await assert_nothing_changed(upstream, spy, run)


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_read_only_deployment_refuses_every_action_even_to_admins(
    action, operator_client, admin_client, action_forms, upstream, spy, settings
):
    settings.READ_ONLY = True
    run, forms = action_forms
    path, form = forms[action]

    for client in (operator_client, admin_client):
        page = await client.get(path)
        response = await post_form(client, path, form)
        for answer in (page, response):
            assert answer.status_code == 403
            assert "This dashboard is read-only: actions are switched off (READ_ONLY)." in text(answer)
    await assert_nothing_changed(upstream, spy, run)


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(
    action, operator_client, action_forms, upstream, spy
):
    run, forms = action_forms
    path, form = forms[action]
    await operator_client.get("/accounts/login/")  # the client has a CSRF cookie, the form sends no token

    response = await post_form(operator_client, path, form, token=False)
    forged = await post_form(operator_client, path, form, token="x" * 64)

    assert response.status_code == 403
    assert forged.status_code == 403
    await assert_nothing_changed(upstream, spy, run)


NOT_RUN_IDS = [
    "nope",
    "run_",
    "run_" + "a" * 129,
    "run_a.b",
    "run_%3Cscript%3E",
    "thread_x",
    "..",
    "run_%20x",
]
NOT_THREAD_IDS = ["nope", "thread_", "thread_a.b", "thread_%3Cb%3E", "run_x", "thread_" + "a" * 129]


@pytest.mark.parametrize("action", ["cancel", "submit", "metadata"])
async def test_run_ids_that_are_not_ids_answer_404_without_calling_the_upstream(action, operator_client, spy):
    for bad in NOT_RUN_IDS:
        path = f"/threads/thread_abc/runs/{bad}/{action}/"

        page = await operator_client.get(path)
        response = await post_form(operator_client, path, {"reason": "x", "key_0": "forged", "value_0": "1"})

        assert (page.status_code, response.status_code) == (404, 404), bad
    assert spy.calls.call_count == 0
    assert await records() == []


@pytest.mark.parametrize("action", ["cancel", "submit", "metadata", "new"])
async def test_thread_ids_that_are_not_ids_answer_404_without_calling_the_upstream(
    action, operator_client, spy
):
    for bad in NOT_THREAD_IDS:
        path = f"/threads/{bad}/runs/new/" if action == "new" else f"/threads/{bad}/runs/run_abc/{action}/"

        response = await post_form(operator_client, path, {"reason": "x", "assistant_id": "asst_abc"})

        assert response.status_code == 404, bad
    assert spy.calls.call_count == 0
    assert await records() == []


async def test_the_404_names_the_id_that_is_not_one(operator_client):
    page = await operator_client.get("/threads/thread_abc/runs/nope/cancel/")

    assert "“nope” is not a valid run id." in text(page)


async def test_an_unknown_connection_answers_404(operator_client, spy):
    response = await post_form(
        operator_client, "/c/nowhere/threads/thread_abc/runs/run_abc/cancel/", {"reason": "x"}
    )

    assert response.status_code == 404
    assert spy.calls.call_count == 0


# --- roles in the pages, and where they come from -----------------------------------------------------


async def test_the_run_page_offers_actions_to_operators_only(
    operator_client, viewer_client, make_run, settings
):
    run = make_run("slow", speed=10)
    links = [f'href="{run_path(run, "cancel")}"', f'href="{run_path(run, "metadata")}"']

    as_operator = (await operator_client.get(run_path(run))).content.decode()
    as_viewer = (await viewer_client.get(run_path(run))).content.decode()
    settings.READ_ONLY = True
    read_only = await operator_client.get(run_path(run))

    assert all(link in as_operator for link in links)
    assert not any(link in as_viewer for link in links)
    assert not any(link in read_only.content.decode() for link in links)
    assert "This dashboard is read-only: actions are switched off." in text(read_only)


async def test_a_user_in_no_group_is_a_viewer(users, module_waiting_run, upstream):
    nobody = await User.objects.acreate_user("nina", password="nina-password-1234")
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(nobody)
    run, _ = module_waiting_run

    response = await client.get(run_path(run, "cancel"))

    assert response.status_code == 403


async def test_the_admin_group_alone_is_enough_to_act(users, make_run, upstream):
    boss = await User.objects.acreate_user("bea", password="bea-password-1234")
    await boss.groups.aadd(await Group.objects.aget(name="admin"))
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(boss)
    run = make_run("slow", speed=10)

    response = await post_form(client, run_path(run, "cancel"), {"reason": "Admin says stop"})

    assert response.status_code == 302
    assert sandbox_run(upstream, run)["status"] in ("cancelling", "cancelled")


async def test_a_superuser_made_with_createsuperuser_can_act(
    transactional_db, make_run, upstream, monkeypatch
):
    monkeypatch.setitem(os.environ, "DJANGO_SUPERUSER_PASSWORD", "root-password-1234")
    await sync_to_async(call_command)(
        "createsuperuser", interactive=False, username="root", email="root@example.com", verbosity=0
    )
    client = AsyncClient(enforce_csrf_checks=True)
    assert await client.alogin(username="root", password="root-password-1234")
    run = make_run("slow", speed=10)

    response = await post_form(client, run_path(run, "cancel"), {"reason": "Root says stop"})

    assert response.status_code == 302
    assert sandbox_run(upstream, run)["status"] in ("cancelling", "cancelled")
    [record] = await records()
    assert (record.username, record.outcome) == ("root", "succeeded")


ADMIN_PAGES = [
    "/admin/auth/user/",
    "/admin/auth/group/",
    "/admin/runs_ui/connection/",
    "/admin/runs_ui/auditrecord/",
]


@pytest.mark.parametrize("page", ADMIN_PAGES)
async def test_the_admin_group_opens_the_admin_for_users_connections_and_the_audit_log(page, admin_client):
    response = await admin_client.get(page)

    assert response.status_code == 200


@pytest.mark.parametrize("page", ADMIN_PAGES)
async def test_operators_and_viewers_cannot_open_the_admin(page, operator_client, viewer_client):
    for client in (operator_client, viewer_client):
        response = await client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")


async def test_staff_outside_the_admin_group_cannot_read_the_audit_log(users, upstream):
    users.viewer.is_staff = True
    await users.viewer.asave()
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(users.viewer)

    response = await client.get("/admin/runs_ui/auditrecord/")

    assert response.status_code == 403

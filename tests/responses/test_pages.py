"""The Responses shape's pages, from the sandbox over HTTP: a response, an item, a conversation's timeline,
exports; and what no page may do with untrusted answers."""

from __future__ import annotations

import json

import httpx
import pytest
import respx

from runs_ui.models import Connection, ResponseSnapshot
from tests.pages.conftest import Faults, assert_fragment, assert_full_page, assert_inert

from .conftest import HX, body, item_ids, load_more_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def faults(upstream, settings):
    settings.UPSTREAM_RETRIES = 0
    recorder = Faults(settings.ASSISTANTS_API_BASE_URL)
    with respx.mock(assert_all_called=False, using="httpx") as router:
        router.route().mock(side_effect=recorder)
        yield recorder


async def test_a_response_page_shows_its_status_model_usage_items_and_configuration(
    viewer_client, make_response, wait_response
):
    created = make_response("sandbox-tools", "Weather, refunds and sales?", instructions="Be brief.")
    done = wait_response(created, "completed")

    page = await viewer_client.get(f"/responses/{created['id']}/")

    assert page.status_code == 200
    assert_full_page(page)
    html = body(page)
    assert f'id="response-status-{created["id"]}"' in html and 'title="completed"' in html
    assert "sandbox-tools" in html and "Be brief." in html
    assert f"{done['usage']['total_tokens']} tokens" in html
    assert item_ids(html) == [item["id"] for item in done["output"]]
    for label in ("Reasoning", "Web search", "File search", "Code interpreter", "Message"):
        assert f'<span class="type">{label}</span>' in html
    assert 'src="data:image/png;base64,' in html  # the chart the code interpreter drew, inline
    assert "Raw JSON" in html
    assert "Cancel response" not in html and "Answer…" not in html  # a viewer, and nothing to do
    assert await ResponseSnapshot.objects.filter(response_id=created["id"], status="completed").aexists()


async def test_its_input_items_load_as_a_partial(viewer_client, make_response):
    created = make_response("sandbox-answer", "What is the sandbox?")

    part = await viewer_client.get(f"/responses/{created['id']}/?part=inputs", headers=HX)

    assert part.status_code == 200
    assert_fragment(part)
    assert "What is the sandbox?" in body(part)


async def test_a_long_output_is_shown_a_hundred_items_at_a_time(viewer_client, make_response, wait_response):
    created = make_response("sandbox-long", "Many things.", speed=100, metadata={"sandbox_items": 230})
    done = wait_response(created, "completed")
    expected = [item["id"] for item in done["output"]]

    page = await viewer_client.get(f"/responses/{created['id']}/")
    shown = item_ids(body(page))
    second = await viewer_client.get(f"/responses/{created['id']}/" + load_more_url(body(page)), headers=HX)
    third = await viewer_client.get(f"/responses/{created['id']}/" + load_more_url(body(second)), headers=HX)

    assert len(expected) == 230
    assert shown == expected[:100]
    assert item_ids(body(second)) == expected[100:200]
    assert item_ids(body(third)) == expected[200:] and load_more_url(body(third)) == ""


async def test_each_item_has_a_page_that_links_back_to_its_place_in_the_output(
    viewer_client, make_response, wait_response
):
    created = make_response("sandbox-long", "Many things.", speed=100, metadata={"sandbox_items": 150})
    done = wait_response(created, "completed")
    item = done["output"][120]

    page = await viewer_client.get(f"/responses/{created['id']}/items/{item['id']}/")

    assert page.status_code == 200
    html = body(page)
    assert item_ids(html) == [item["id"]]
    assert f'href="/responses/{created["id"]}/?from=100#{item["id"]}"' in html
    assert "121 of 150" in html
    deep = await viewer_client.get(f"/responses/{created['id']}/?from=100")
    assert item_ids(body(deep))[20] == item["id"]


async def test_an_input_item_has_a_page_too_and_an_unknown_one_is_a_404(viewer_client, make_response):
    created = make_response("sandbox-answer", "Find me.")
    [given] = await _input_items(viewer_client, created["id"])

    found = await viewer_client.get(f"/responses/{created['id']}/items/{given}/")
    missing = await viewer_client.get(f"/responses/{created['id']}/items/msg_nothere/")

    assert found.status_code == 200 and "Find me." in body(found) and "one of its input items" in body(found)
    assert missing.status_code == 404 and "msg_nothere" in body(missing)


async def _input_items(client, response_id: str) -> list[str]:
    return item_ids(body(await client.get(f"/responses/{response_id}/?part=inputs", headers=HX)))


async def test_a_conversation_groups_its_items_under_the_responses_that_wrote_them(
    viewer_client, make_response, wait_response, make_conversation, answer_calls
):
    conversation = make_conversation(title="Weather")
    first = wait_response(
        make_response("sandbox-functions", "Weather in Paris?", conversation=conversation["id"]), "completed"
    )
    second = wait_response(answer_calls(first), "completed")

    page = await viewer_client.get(f"/conversations/{conversation['id']}/")
    timeline = await viewer_client.get(f"/conversations/{conversation['id']}/?part=timeline", headers=HX)

    assert page.status_code == 200 and "Weather" in body(page)
    html = body(timeline)
    groups = html.split('<li class="tl-item tl-')[1:]
    kinds = [g.split('"')[0].split()[0] for g in groups]
    # The question, the first response's two calls, the two outputs given, the second response's answer.
    assert kinds == ["given", "run", "given", "given", "run"]
    assert f'id="response-{first["id"]}"' in groups[1] and item_ids(groups[1]) == [
        i["id"] for i in first["output"]
    ]
    assert f'id="response-{second["id"]}"' in groups[4] and item_ids(groups[4]) == [
        i["id"] for i in second["output"]
    ]
    assert "Weather in Paris?" in groups[0] and "function_call_output" not in groups[1]
    assert 'data-run="' + second["id"] in groups[4]


async def test_a_conversation_pages_through_its_items(viewer_client, make_conversation, upstream):
    conversation = make_conversation()
    for start in (0, 20):
        items = [
            {"type": "message", "role": "user", "content": f"note {n}"} for n in range(start, start + 20)
        ]
        upstream.api("POST", f"/conversations/{conversation['id']}/items", json={"items": items})

    first = await viewer_client.get(f"/conversations/{conversation['id']}/?part=timeline", headers=HX)
    second = await viewer_client.get(
        f"/conversations/{conversation['id']}/" + load_more_url(body(first)), headers=HX
    )

    notes = [f"note {n}<" for n in range(40)]
    assert all(n in body(first) for n in notes[:30]) and notes[30] not in body(first)
    assert all(n in body(second) for n in notes[30:]) and load_more_url(body(second)) == ""


async def test_exports_carry_every_item_of_a_response_and_of_a_conversation(
    viewer_client, make_response, wait_response, make_conversation, answer_calls
):
    conversation = make_conversation()
    first = wait_response(
        make_response("sandbox-functions", "Weather?", conversation=conversation["id"]), "completed"
    )
    second = wait_response(answer_calls(first), "completed")

    response_export = await viewer_client.get(f"/responses/{second['id']}/export.json")
    conversation_export = await viewer_client.get(f"/conversations/{conversation['id']}/export.json")

    exported = json.loads(response_export.content)
    assert response_export["Content-Disposition"] == f'attachment; filename="{second["id"]}.json"'
    assert exported["response"]["id"] == second["id"]
    assert [i["type"] for i in exported["input_items"]] == ["function_call_output", "function_call_output"]
    whole = json.loads(conversation_export.content)
    assert whole["conversation"]["id"] == conversation["id"]
    assert [r["id"] for r in whole["responses"]] == [first["id"], second["id"]]
    assert len(whole["items"]) == 1 + len(first["output"]) + 2 + len(second["output"])


async def test_unknown_item_types_are_shown_as_raw_json_and_hostile_text_stays_text(viewer_client, faults):
    output = [
        {"id": "cu_1", "type": "computer_call", "status": "completed", "action": {"type": "click"}},
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {
                    "type": "output_text",
                    "text": "<script>alert(1)</script>[x](javascript:alert(2))",
                    "annotations": [],
                },
                {"type": "hologram", "beam": "<img src=x onerror=alert(3)>"},
            ],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "<b>f</b>",
            "arguments": "{bad json",
        },
    ]
    faults.on(
        "GET",
        "/responses/resp_odd",
        httpx.Response(
            200,
            json={"id": "resp_odd", "object": "response", "status": "weird", "model": "m", "output": output},
        ),
    )

    page = await viewer_client.get("/responses/resp_odd/")

    assert page.status_code == 200
    html = body(page)
    assert_inert(html)
    assert (
        '<span class="type unknown-type"' in html and "computer_call" in html and "&quot;click&quot;" in html
    )
    assert "hologram" in html and "&lt;img src=x onerror=alert(3)&gt;" in html
    assert "&lt;b&gt;f&lt;/b&gt;" in html and "{bad json" in html
    assert "is not one this dashboard knows" in html


async def test_an_unreadable_or_missing_response_is_a_page_that_says_so_not_a_500(viewer_client, faults):
    faults.on("GET", "/responses/resp_html", httpx.Response(502, html="<html>gateway</html>"))

    missing = await viewer_client.get("/responses/resp_missing/")
    broken = await viewer_client.get("/responses/resp_html/")
    invalid = await viewer_client.get("/responses/not-a-response/")

    assert missing.status_code == 404 and "resp_missing" in body(missing)
    assert broken.status_code == 503 and "HTML page" in body(broken)
    assert invalid.status_code == 404 and "not a valid response id" in body(invalid)


async def test_a_connection_of_the_assistants_shape_has_no_response_pages_and_the_other_way_round(
    viewer_client, upstream
):
    await Connection.objects.acreate(
        slug="classic", name="Classic", profile="openai", base_url=upstream.base_url
    )
    await Connection.objects.acreate(
        slug="foundry", name="Foundry", profile="azure-foundry", base_url=upstream.base_url
    )

    response_page = await viewer_client.get("/c/classic/responses/resp_1/")
    thread_page = await viewer_client.get("/c/foundry/threads/thread_1/")

    assert response_page.status_code == 404 and "speaks the Assistants shape" in body(response_page)
    assert thread_page.status_code == 404 and "speaks the Responses shape" in body(thread_page)

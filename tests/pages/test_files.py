"""The file proxy serves only files something on a page refers to (a step's code-interpreter image, a
message's image), through the link that page drew; any other file id, even one the server's key can read,
is a clear 404 that never reaches the upstream."""

import re
from html import unescape

from asgiref.sync import sync_to_async

from runs_ui.connections import encrypt_key
from runs_ui.file_links import file_url
from runs_ui.models import Connection
from tests.pages.conftest import HX, text

NOT_REFERRED = "is not a file any page of this dashboard refers to"


async def image_of_a_code_run(client, finished) -> tuple[str, str]:
    """(file id, the link the run's steps draw for it)."""
    run = finished("code")
    html = text(await client.get(f"/threads/{run.thread_id}/runs/{run.run_id}/?part=steps", headers=HX))
    src = unescape(re.search(r'<img class="code-image" src="([^"]+)"', html).group(1))
    return re.search(r"/files/([^/]+)/content", src).group(1), src


async def test_the_image_a_step_shows_is_served_through_the_link_the_page_drew(viewer_client, finished):
    _, src = await image_of_a_code_run(viewer_client, finished)

    picture = await viewer_client.get(src)

    assert picture.status_code == 200
    assert picture["Content-Type"] == "image/png" and picture.content.startswith(b"\x89PNG")


async def test_a_file_id_without_a_pages_link_is_a_404_that_never_asks_the_upstream(
    viewer_client, finished, faults
):
    file_id, _ = await image_of_a_code_run(viewer_client, finished)
    other_file_link = file_url("default", "file-someotherfile01")
    forged = [
        f"/files/{file_id}/content",  # the bare id: the server's key could read it
        f"/files/{file_id}/content?ref=",
        f"/files/{file_id}/content?ref=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        f"/files/{file_id}/content?" + other_file_link.split("?")[1],  # another file's proof
    ]
    faults.calls.clear()

    answers = [await viewer_client.get(path) for path in forged]

    for answer in answers:
        assert answer.status_code == 404
        assert NOT_REFERRED in text(answer)
        assert file_id in text(answer)
    assert [p for p in faults.paths() if "/files/" in p] == []


async def test_a_link_drawn_on_one_connection_opens_nothing_on_another(viewer_client, finished, upstream):
    await sync_to_async(Connection.objects.create)(
        slug="other",
        name="Other",
        profile="sandbox",
        base_url=upstream.base_url,
        api_key_encrypted=encrypt_key(upstream.api_key),
    )
    file_id, src = await image_of_a_code_run(viewer_client, finished)

    elsewhere = await viewer_client.get(f"/c/other{src}")
    drawn_there = await viewer_client.get(file_url("other", file_id))

    assert elsewhere.status_code == 404 and NOT_REFERRED in text(elsewhere)
    assert drawn_there.status_code == 200  # the same file, linked from a page of that connection


def test_a_file_link_is_drawn_only_for_file_ids():
    assert file_url("default", "file-abc123").startswith("/files/file-abc123/content?ref=")
    for not_a_file in ("", "../../admin", "file-<b>", "thread_abc", "file-" + "x" * 200):
        assert file_url("default", not_a_file) == ""

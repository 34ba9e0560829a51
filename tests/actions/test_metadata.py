"""Edit metadata: a key/value editor with the API's limits; the saved set replaces the run's metadata."""

import re

import pytest

from tests.actions.conftest import calls_to, follow, post_form, records, run_path, sandbox_run, text


def rows(*pairs: tuple[str, str]) -> dict:
    data = {}
    for i, (key, value) in enumerate(pairs):
        data[f"key_{i}"], data[f"value_{i}"] = key, value
    return data


@pytest.fixture
def finished_run(make_run, wait_for):
    run = make_run("answer", speed=50, team="blue")
    wait_for(run, "completed")
    return run


async def test_the_editor_shows_the_runs_current_metadata(operator_client, finished_run):
    page = await operator_client.get(run_path(finished_run, "metadata"))

    body = page.content.decode()
    rows = dict(re.findall(r'name="key_(\d+)" value="([^"]*)"', body))
    values = dict(re.findall(r'name="value_(\d+)" value="([^"]*)"', body))
    assert page.status_code == 200
    assert {rows[i]: values[i] for i in rows} == {"sandbox_speed": "50", "team": "blue"}
    assert "At most 16 pairs; keys up to 64 characters, values up to 512." in text(page)


async def test_saved_metadata_replaces_the_runs_metadata_and_empty_rows_are_ignored(
    operator_client, finished_run, upstream, spy
):
    form = rows(("owner", "ops"), ("", ""), ("ticket", "T-1234"), ("", ""))

    response = await post_form(operator_client, run_path(finished_run, "metadata"), form)

    assert response["Location"] == run_path(finished_run)
    assert sandbox_run(upstream, finished_run)["metadata"] == {"owner": "ops", "ticket": "T-1234"}
    assert len(calls_to(spy, "POST", f"/runs/{finished_run.run_id}")) == 1
    page = await follow(operator_client, response)
    assert "Metadata saved." in text(page)
    assert "owner ops" in text(page)
    assert "team blue" not in text(page)
    [record] = await records()
    assert record.outcome == "succeeded"
    assert record.payload == {
        "metadata": {"owner": "ops", "ticket": "T-1234"},
        "before": {"sandbox_speed": "50", "team": "blue"},
    }


async def test_clearing_every_row_removes_all_metadata(operator_client, finished_run, upstream):
    response = await post_form(operator_client, run_path(finished_run, "metadata"), rows(("", "")))

    assert response.status_code == 302
    assert sandbox_run(upstream, finished_run)["metadata"] == {}


async def test_metadata_at_the_limits_is_accepted(operator_client, finished_run, upstream):
    pairs = [(f"k{i:02d}".ljust(64, "k"), f"v{i}".ljust(512, "v")) for i in range(16)]

    response = await post_form(operator_client, run_path(finished_run, "metadata"), rows(*pairs))

    assert response.status_code == 302
    assert sandbox_run(upstream, finished_run)["metadata"] == dict(pairs)


BAD = {
    "too many pairs": (
        [(f"key{i}", "v") for i in range(17)],
        "At most 16 pairs (17 given).",
        "key16",
    ),
    "a key too long": ([("k" * 65, "v")], "Keys are at most 64 characters (65 given).", "k" * 65),
    "a value too long": ([("note", "v" * 513)], "Values are at most 512 characters (513 given).", "v" * 513),
    "a duplicate key": ([("owner", "a"), ("owner", "b")], "“owner” appears twice.", 'value="b"'),
    "a value without a key": ([("owner", "a"), ("", "orphan")], "A value needs a key.", 'value="orphan"'),
}


@pytest.mark.parametrize("case", list(BAD))
async def test_invalid_metadata_is_refused_with_a_clear_message_and_the_input_kept(
    case, operator_client, finished_run, upstream, spy
):
    pairs, message, kept = BAD[case]

    response = await post_form(operator_client, run_path(finished_run, "metadata"), rows(*pairs))

    assert response.status_code == 400
    assert message in text(response)
    assert kept in response.content.decode()
    assert calls_to(spy, "POST", f"/runs/{finished_run.run_id}") == []
    assert await records() == []
    assert sandbox_run(upstream, finished_run)["metadata"] == {"sandbox_speed": "50", "team": "blue"}

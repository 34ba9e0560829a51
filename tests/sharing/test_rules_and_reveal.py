"""Rules from the database per audience, the admin's rule pages and test box, and audited reveals."""

import importlib

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps

from runs_ui.connections import default_client
from runs_ui.roles import NOBODY, OPERATOR, Roles
from runs_ui.sharing.models import HiddenMetadataKey, RedactionRule, RevealRecord
from runs_ui.sharing.reveal import Place, RevealRefused, read_ref, ref_for, reveal, reveal_html
from runs_ui.sharing.rules import SHARED, VIEWER, redactor_for
from runs_ui.upstream.objects import Message
from tests.fixtures import csrf_token

TEXT = "Mail jane@example.com, card 4111 1111 1111 1111, ticket ACME-123456."


async def test_with_no_rows_every_built_in_applies_to_shared_views_and_none_to_viewers(transactional_db):
    await RedactionRule.objects.all().adelete()
    assert (await redactor_for(SHARED)).text(TEXT) == "Mail [email], card [card], ticket ACME-123456."
    assert (await redactor_for(VIEWER)).text(TEXT) == TEXT


async def test_rows_switch_built_ins_per_audience_and_add_patterns_and_hidden_keys(transactional_db):
    await RedactionRule.objects.acreate(
        name="Cards", builtin="card", applies_to_shares=False, applies_to_viewers=True
    )
    await RedactionRule.objects.acreate(
        name="Tickets", pattern=r"ACME-\d+", label="ticket", applies_to_viewers=True
    )
    await HiddenMetadataKey.objects.acreate(key="customer_*")
    shared, viewer = await redactor_for(SHARED), await redactor_for(VIEWER)
    assert shared.text(TEXT) == "Mail [email], card 4111 1111 1111 1111, ticket [ticket]."
    assert viewer.text(TEXT) == "Mail jane@example.com, card [card], ticket [ticket]."
    assert shared.json({"metadata": {"customer_id": "1", "tier": "gold"}}) == {"metadata": {"tier": "gold"}}
    assert viewer.json({"metadata": {"customer_id": "1"}}) == {"metadata": {"customer_id": "1"}}


async def test_a_changed_rule_takes_effect_on_the_next_request(transactional_db):
    rule = await RedactionRule.objects.acreate(name="Tickets", pattern=r"ACME-\d+", label="ticket")
    assert "[ticket]" in (await redactor_for(SHARED)).text(TEXT)
    rule.applies_to_shares = False
    await rule.asave()
    assert "ACME-123456" in (await redactor_for(SHARED)).text(TEXT)


def test_the_migration_makes_one_row_per_built_in_and_can_run_twice(transactional_db):
    migration = importlib.import_module("runs_ui.migrations.0002_redaction_rules_and_webhooks")
    RedactionRule.objects.all().delete()
    migration.add_builtin_rules(apps, None)
    migration.add_builtin_rules(apps, None)
    assert sorted(RedactionRule.objects.values_list("builtin", flat=True)) == sorted(
        ["email", "phone", "card", "iban", "secret", "jwt", "ip"]
    )


async def _post(client, path, data):
    token = await csrf_token(client, "/admin/")
    return await client.post(path, {**data, "csrfmiddlewaretoken": token})


async def test_the_admin_test_box_shows_text_redacted_by_the_saved_rules(admin_client):
    await RedactionRule.objects.acreate(name="Tickets", pattern=r"ACME-\d+", label="ticket")
    listing = (await admin_client.get("/admin/runs_ui/redactionrule/")).content.decode()
    assert "Test the rules" in listing
    response = await _post(
        admin_client,
        "/admin/runs_ui/redactionrule/test/",
        {"text": TEXT + " <script>x</script>", "audience": SHARED},
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Mail [email], card [card], ticket [ticket]. &lt;script&gt;x&lt;/script&gt;" in page
    assert "jane@example.com" not in page.split('id="redacted"')[1]


async def test_the_admin_refuses_a_catastrophic_pattern_with_the_reason(admin_client):
    response = await _post(
        admin_client,
        "/admin/runs_ui/redactionrule/add/",
        {"name": "Bad", "pattern": r"(\w+\s?)+$", "label": "bad", "applies_to_shares": "on"},
    )
    assert response.status_code == 200
    assert "backtrack catastrophically" in response.content.decode()
    assert not await RedactionRule.objects.filter(name="Bad").aexists()


async def test_a_viewer_cannot_open_the_test_box(viewer_client):
    response = await viewer_client.get("/admin/runs_ui/redactionrule/test/")
    assert response.status_code == 302


# --- reveal ------------------------------------------------------------------------------------------


def _place(run, message_id):
    return Place("default", "message", run.thread_id, run.run_id, message_id, ("content", 0, "text", "value"))


@pytest.fixture
async def message_with_pii(make_run, wait_for, users):
    """A real sandbox thread whose user message holds an email and a card number."""
    run = make_run("answer", message="I am jane@example.com, card 4111 1111 1111 1111.")
    await sync_to_async(wait_for)(run, "completed")
    page = await default_client().list_messages(run.thread_id, order="asc")
    return run, next(m for m in page.data if m.role == "user")


async def test_an_operator_reveals_one_redacted_value_and_the_reveal_is_recorded(message_with_pii, users):
    run, message = message_with_pii
    redactor = await redactor_for(SHARED)
    text, spans = redactor.text_with_spans(message.text)
    assert text == "I am [email], card [card]."
    token = ref_for(_place(run, message.id), spans[1])
    assert "4111" not in token and "jane" not in token
    value = await reveal(
        users.operator, Roles(frozenset({OPERATOR})), default_client(), token, redactor, "ticket 9"
    )
    assert value == "4111 1111 1111 1111"
    record = await RevealRecord.objects.aget()
    assert (record.username, record.label, record.object_id, record.reason) == (
        "olivia",
        "card",
        message.id,
        "ticket 9",
    )
    assert record.path == ".content[0].text.value" and "4111" not in str(record.__dict__)


async def test_a_viewer_or_a_forged_reference_reveals_nothing(message_with_pii, users):
    run, message = message_with_pii
    redactor = await redactor_for(SHARED)
    _, spans = redactor.text_with_spans(message.text)
    token = ref_for(_place(run, message.id), spans[0])
    with pytest.raises(RevealRefused, match="Only operators"):
        await reveal(users.viewer, NOBODY, default_client(), token, redactor)
    with pytest.raises(RevealRefused, match="not a reference"):
        await reveal(
            users.operator, Roles(frozenset({OPERATOR})), default_client(), token[:-3] + "abc", redactor
        )
    assert not await RevealRecord.objects.aexists()


async def test_a_reference_made_under_other_rules_is_refused(message_with_pii, users):
    run, message = message_with_pii
    redactor = await redactor_for(SHARED)
    _, spans = redactor.text_with_spans(message.text)
    token = ref_for(_place(run, message.id), spans[1])  # [card]
    await RedactionRule.objects.aupdate_or_create(
        builtin="card", defaults={"name": "c", "applies_to_shares": False}
    )
    with pytest.raises(RevealRefused, match="changed"):
        await reveal(
            users.operator, Roles(frozenset({OPERATOR})), default_client(), token, await redactor_for(SHARED)
        )


def test_reveal_buttons_carry_references_and_escape_the_text():
    from runs_ui.sharing.redaction import all_builtins

    text, spans = all_builtins().text_with_spans("<b>jane@example.com</b>")
    place = Place("default", "message", "thread_1", "run_1", "msg_1", ("content", 0))
    html = reveal_html(text, spans, lambda span: ref_for(place, span))
    assert html.startswith('&lt;b&gt;<button type="button" class="redacted" data-reveal="')
    assert html.endswith(">[email]</button>&lt;/b&gt;")
    token = html.split('data-reveal="')[1].split('"')[0]
    assert read_ref(token).place == place and read_ref(token).label == "email"


def test_a_message_parsed_from_a_redacted_tree_has_no_trace_of_the_value():
    from runs_ui.sharing.redaction import all_builtins

    raw = {
        "id": "msg_1",
        "role": "user",
        "content": [{"type": "text", "text": {"value": "jane@example.com"}}],
    }
    assert "jane" not in repr(all_builtins().object(Message.from_json(raw)))

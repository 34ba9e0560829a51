"""Each built-in rule redacts its kind, shows only the kind, and leaves look-alikes alone."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runs_ui.sharing.builtin_rules import BUILTINS
from runs_ui.sharing.redaction import Redactor

ALL = Redactor(BUILTINS)

CAUGHT = {
    "email": ["bob.smith@example.com", "jane+tag@mail.example.co.uk", "josé.ñ@exämple.de", "x_1@sub-d.io"],
    "phone": [
        "+44 20 7946 0958",
        "+1 (555) 123-4567",
        "+33612345678",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "06 12 34 56 78",
        "020 7946 0958",
    ],
    "card": [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5500 0000 0000 0004",
        "3782 822463 10005",
        "6011000990139424",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "GB82WEST12345698765432",
        "NL91 ABNA 0417 1643 00",
        "FR14 2004 1010 0505 0001 3M02 606",
    ],
    "api-key": [
        "sk-proj-abcDEF1234567890abcdefGHIJ",
        "sk-sandbox-test-0123456789abcdef01234567",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-1234-5678-abcdefghij",
    ],
    "jwt": [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    ],
    "ip": [
        "192.168.1.10",
        "8.8.8.8",
        "2001:db8::8a2e:370:7334",
        "fe80::1ff:fe23:4567:890a",
        "::ffff:192.0.2.1",
    ],
}


@pytest.mark.parametrize(("label", "value"), [(k, v) for k, vs in CAUGHT.items() for v in vs])
def test_each_built_in_rule_redacts_its_kind_showing_only_the_kind(label, value):
    text = f"Customer said: {value}, please check."
    assert ALL.text(text) == f"Customer said: [{label}], please check."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-123456789", "Authorization: Bearer [token]"),
        ("curl -H 'authorization: basic dXNlcjpwYXNzd29yZA=='", "curl -H 'authorization: basic [token]'"),
        ('{"password": "hunter2!!", "user": "ann"}', '{"password": "[secret]", "user": "ann"}'),
        ("API_KEY=abcd1234efgh ./run", "API_KEY=[secret] ./run"),
    ],
)
def test_tokens_and_secrets_keep_the_word_that_names_them(text, expected):
    assert ALL.text(text) == expected


NEAR_MISSES = [
    "4111 1111 1111 1112",  # fails Luhn
    "4111111111111112",  # fails Luhn
    "1764070000123",  # a timestamp in milliseconds (passes Luhn, but no card starts with 1)
    "DE89 3704 0044 0532 0130 01",  # IBAN with a bad checksum
    "DE89370400440532013001",
    "XX89 3704 0044 0532 0130 00",  # no such country
    "version 1.2.3.4",
    "v1.2.3.4",
    "10.0.19041.1",
    "1.2.3",
    "1.3.6.1.4.1.311",  # an OID
    "999.168.1.1",
    "2024-01-15 10:30:00",
    "01.02.2024",
    "12:30:45",
    "a[1::2]",
    "std::vector<int>",
    "00:1A:2B:3C:4D:5E",  # a MAC address
    "user@localhost",
    "icon@2x.png",
    "@channel",
    "sk-learn",
    "sk-this-is-a-long-hyphenated-slug-name",
    "eyJhbGciOiJIUzI1NiJ9",  # a JWT header alone
    "The total was 1,234,567.89 and 12 345 678 units.",
    "Order 1234 shipped",
    "thread_4111111111111111",
    "call_555-123-4567",
    "[email] [card] [phone]",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_look_alikes_are_left_alone(text):
    assert ALL.text(text) == text


def test_only_enabled_rules_apply():
    text = "mail bob@example.com from 10.0.0.1"
    assert Redactor({"email"}).text(text) == "mail [email] from 10.0.0.1"
    assert Redactor({"ip"}).text(text) == "mail bob@example.com from [ip]"
    assert Redactor().text(text) == text


SAMPLES = [v for vs in CAUGHT.values() for v in vs] + NEAR_MISSES


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(SAMPLES),
            st.text(alphabet="0123456789 .-+:@()[]abcdefXYZ_/=\n", max_size=20),
            st.text(max_size=10),
        ),
        max_size=8,
    )
)
def test_redaction_is_idempotent(pieces):
    once = ALL.text("".join(pieces))
    assert ALL.text(once) == once

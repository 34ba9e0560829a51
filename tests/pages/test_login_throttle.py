"""Log-in attempts are throttled: a few failures a minute per username and per client address, then every
attempt (even with the right password) is refused with a clear message, until the minute has passed."""

from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.test import AsyncClient

from runs_ui import login_throttle
from tests.fixtures import csrf_token

PASSWORD = "olivia-password-1234"  # tests/fixtures.py's operator


@pytest.fixture(autouse=True)
def fresh_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, moved by hand."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(login_throttle, "clock", lambda: now[0])
    return now


class ClientAt(AsyncClient):
    """A test client whose requests come from `address` (the ASGI scope's client, REMOTE_ADDR)."""

    def __init__(self, address: str):
        super().__init__(enforce_csrf_checks=True)
        self.address = address

    def _base_scope(self, **request):
        return {**super()._base_scope(**request), "client": [self.address, 0]}


async def log_in(username: str, password: str, address: str = "10.0.0.1", forwarded_for: str = ""):
    """A log-in through the form, from `address` (the ASGI scope's client)."""
    client = ClientAt(address)
    token = await csrf_token(client, "/accounts/login/")
    body = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": token})
    return await client.post(
        "/accounts/login/",
        body,
        content_type="application/x-www-form-urlencoded",
        headers={"X-Forwarded-For": forwarded_for} if forwarded_for else None,
    )


def says(response) -> str:
    return response.content.decode()


THROTTLED = "Too many failed attempts to log in with this username or from this address"


async def test_after_five_failures_for_a_username_even_the_right_password_waits_a_minute(
    users, clock, settings
):
    settings.LOGIN_ATTEMPTS_PER_MINUTE = 5
    failures = [await log_in("olivia", "wrong", address=f"10.0.0.{n}") for n in range(5)]

    refused = await log_in("olivia", PASSWORD, address="10.0.0.99")
    clock[0] += 61
    allowed = await log_in("olivia", PASSWORD, address="10.0.0.99")

    assert [f.status_code for f in failures] == [200] * 5
    assert all("That username and password did not match." in says(f) for f in failures)
    assert refused.status_code == 429
    assert THROTTLED in says(refused)
    assert "sessionid" not in refused.cookies  # not logged in
    assert allowed.status_code == 302


async def test_failures_from_one_address_throttle_it_and_no_other(users, clock, settings):
    settings.LOGIN_ATTEMPTS_PER_MINUTE = 3
    for name in ("mallory", "trent", "eve"):
        await log_in(name, "guess", address="203.0.113.7")

    from_there = await log_in("olivia", PASSWORD, address="203.0.113.7")
    from_elsewhere = await log_in("olivia", PASSWORD, address="198.51.100.1")

    assert from_there.status_code == 429 and THROTTLED in says(from_there)
    assert from_elsewhere.status_code == 302


async def test_successful_log_ins_are_not_counted(users, clock, settings):
    settings.LOGIN_ATTEMPTS_PER_MINUTE = 2

    answers = [await log_in("olivia", PASSWORD) for _ in range(4)]

    assert [a.status_code for a in answers] == [302] * 4


async def test_behind_a_trusted_proxy_the_address_it_appended_is_counted(users, clock, settings):
    settings.LOGIN_ATTEMPTS_PER_MINUTE = 2
    settings.TRUST_X_FORWARDED_FOR = True
    proxy = "10.1.1.1"
    for forged in ("1.1.1.1", "2.2.2.2"):  # what the client claims comes first; the proxy appends the truth
        await log_in("nobody", "guess", address=proxy, forwarded_for=f"{forged}, 192.0.2.50")

    same_client = await log_in("olivia", PASSWORD, address=proxy, forwarded_for="192.0.2.50")
    other_client = await log_in("olivia", PASSWORD, address=proxy, forwarded_for="192.0.2.51")

    assert same_client.status_code == 429
    assert other_client.status_code == 302

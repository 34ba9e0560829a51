"""Every limit of the client is a setting: read from the environment, documented, and what the client uses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runs_ui.connections import default_client
from runs_ui.upstream.limits import Limits, setting_of

BASE_DIR = Path(__file__).resolve().parents[2]
LIMITS = [f.name for f in dataclasses.fields(Limits)]


@pytest.mark.parametrize("limit", LIMITS)
def test_each_limits_default_is_its_settings_default(limit):
    from django.conf import settings

    # The test settings are the defaults (no UPSTREAM_* variable is set for the test run).
    assert getattr(settings, setting_of(limit)) == getattr(Limits(), limit)


@pytest.mark.parametrize("limit", LIMITS)
def test_each_limit_setting_is_what_the_client_uses(settings, limit):
    value = getattr(Limits(), limit) * 3
    setattr(settings, setting_of(limit), value)

    assert getattr(default_client().limits, limit) == value


@pytest.mark.parametrize("limit", LIMITS)
def test_each_limit_setting_is_in_the_readme_and_the_env_example(limit):
    setting = setting_of(limit)
    assert f"`{setting}`" in (BASE_DIR / "README.md").read_text()
    assert f"# {setting}=" in (BASE_DIR / ".env.example").read_text()

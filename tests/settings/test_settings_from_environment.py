"""Settings come from the environment, with defaults that run on a fresh checkout, and refuse bad values.

Each test starts a fresh Python process, since settings are read once at start-up.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
SHOW = (
    "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
    "'debug': s.DEBUG, 'engine': s.DATABASES['default']['ENGINE'], "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'profile': s.ASSISTANTS_API_PROFILE, "
    "'base_url': s.ASSISTANTS_API_BASE_URL, 'sandbox_key': s.SANDBOX_API_KEY}))"
)


def _env(**overrides) -> dict:
    # Only what a newcomer's shell would have: none of this project's variables.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    env.update(overrides)
    return env


def _run(code: str, **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=_env(**overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings(**overrides) -> dict:
    result = _run(SHOW, **overrides)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_fresh_checkout_runs_on_sqlite_the_in_memory_layer_and_the_sandbox_with_debug_off():
    shown = _settings()
    assert shown["engine"] == "django.db.backends.sqlite3"
    assert shown["layer"] == "channels.layers.InMemoryChannelLayer"
    assert shown["profile"] == "sandbox"
    assert shown["base_url"] == ""
    assert shown["debug"] is False
    assert shown["sandbox_key"].startswith("sk-sandbox-")


def test_database_url_selects_postgresql_and_redis_url_the_redis_layer():
    shown = _settings(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/test", REDIS_URL="redis://127.0.0.1:6379/0"
    )
    assert shown["engine"] == "django.db.backends.postgresql"
    # channels_redis's layer, on a blocking connection pool (runs_ui/live/layer.py).
    assert shown["layer"] == "runs_ui.live.layer.BlockingPoolRedisChannelLayer"


def test_a_base_url_without_a_profile_means_an_openai_compatible_upstream():
    shown = _settings(ASSISTANTS_API_BASE_URL="https://llm.example.com/v1", ASSISTANTS_API_PROFILE="")
    assert shown["profile"] == "openai"


def test_malformed_values_stop_the_process_naming_the_variable():
    for name, value in [
        ("DEBUG", "maybe"),
        ("UPSTREAM_TIMEOUT", "soon"),
        ("UPSTREAM_DEADLINE", "0"),
        ("UPSTREAM_MAX_BODY_BYTES", "lots"),
        ("ASSISTANTS_API_PROFILE", "bogus"),
        ("PORT", "99999"),
        ("DATABASE_URL", "not a url"),
    ]:
        result = _run(SHOW, **{name: value})
        assert result.returncode != 0, name
        assert name in result.stderr, (name, result.stderr[-500:])


def test_check_deploy_passes_with_production_settings():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=_env(SECRET_KEY=secrets.token_urlsafe(50), HTTPS="true", ALLOWED_HOSTS="dash.example.com"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_complains_about_development_defaults():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout

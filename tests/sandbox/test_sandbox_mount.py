"""The sandbox is served by the dashboard only when it is the upstream, or when SANDBOX_MOUNT asks for it:
with a real upstream, /sandbox/v1/ is a 404 like any unknown path.

Each case starts a fresh Python process: the URLs are read once at start-up.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
# The sandbox API without its key answers 401 when mounted; the dashboard answers 404 where nothing is.
ASK = (
    "import json, django; django.setup(); from django.test import Client; "
    "c = Client(); r = c.get('/sandbox/v1/threads'); "
    "print(json.dumps({'status': r.status_code, 'json': r.headers.get('Content-Type', '')}))"
)


def _answer(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({"DJANGO_SETTINGS_MODULE": "dashboard.settings", "ALLOWED_HOSTS": "testserver", **overrides})
    done = subprocess.run(
        [sys.executable, "-c", ASK], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_sandbox_is_mounted_when_it_is_the_upstream():
    answer = _answer()
    assert answer == {"status": 401, "json": "application/json"}  # the sandbox itself, asking for its key


def test_the_sandbox_is_not_mounted_with_a_real_upstream():
    answer = _answer(ASSISTANTS_API_BASE_URL="https://api.example.com/v1", ASSISTANTS_API_KEY="sk-x")
    assert answer["status"] == 404
    assert "json" not in answer["json"]  # the dashboard's own 404 page, not the sandbox's error


@pytest.mark.parametrize(
    "base_url, mount, status",
    [("https://api.example.com/v1", "true", 401), ("", "false", 404)],
)
def test_sandbox_mount_overrides_the_default(base_url, mount, status):
    assert _answer(ASSISTANTS_API_BASE_URL=base_url, SANDBOX_MOUNT=mount)["status"] == status

"""Settings for the sandbox on its own (`daphne sandbox.asgi:application`): just the API, no dashboard.

Same environment variables as the dashboard's settings for what the sandbox uses, read the same way
(environs, validated, defaults inline). Its SQLite file is var/sandbox.sqlite3 unless DATABASE_URL is set.
"""

from pathlib import Path

from environs import Env
from marshmallow.validate import Range

from sandbox.local_keys import local_secret_key, sandbox_api_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = Env()
env.read_env(BASE_DIR / ".env", recurse=False)


# The checkout's key in var/ (shared with the dashboard), so both derive the same sandbox key.
SECRET_KEY = env.str("SECRET_KEY", "") or local_secret_key(VAR_DIR)
DEBUG = env.bool("DEBUG", False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = ["daphne", "sandbox"]
MIDDLEWARE = ["django.middleware.security.SecurityMiddleware"]
ROOT_URLCONF = "sandbox.standalone_urls"
ASGI_APPLICATION = "sandbox.asgi.application"
WSGI_APPLICATION = None

DATABASES = {"default": env.dj_db_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'sandbox.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # As in the dashboard: IMMEDIATE serialises writers across processes, WAL lets readers carry on.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.log_level("LOG_LEVEL", "INFO")},
}

PORT = env.int("PORT", 8001, validate=Range(min=1, max=65535))
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", f"http://127.0.0.1:{PORT}/v1")
SANDBOX_API_KEY = env.str("SANDBOX_API_KEY", "") or sandbox_api_key(SECRET_KEY)
SANDBOX_SPEED = env.float("SANDBOX_SPEED", 1.0, validate=Range(min=0.01, max=1000))
SANDBOX_LATENCY_MS = env.int("SANDBOX_LATENCY_MS", 0, validate=Range(min=0, max=60_000))
# The `openai-poll-after-ms` hint sent with runs (divided by the run's speed).
SANDBOX_POLL_AFTER_MS = env.int("SANDBOX_POLL_AFTER_MS", 500, validate=Range(min=10, max=60_000))
# A file to append one JSON line per API request to (method, path, user agent): for tests counting calls.
SANDBOX_REQUEST_LOG = env.str("SANDBOX_REQUEST_LOG", "")

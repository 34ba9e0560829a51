"""Settings for the runs dashboard: every value comes from the environment, with its default inline.

A malformed value stops the process with a message naming the variable (environs validates each one).
`.env.example` documents every variable.
"""

from pathlib import Path

from django.utils.csp import CSP
from environs import Env
from marshmallow import ValidationError
from marshmallow.validate import OneOf, Range

from runs_ui.upstream.profiles import PROFILES as UPSTREAM_PROFILES
from sandbox.local_keys import local_secret_key, sandbox_api_key

BASE_DIR = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
VAR_DIR = BASE_DIR / "var"

env = Env()
env.read_env(BASE_DIR / ".env", recurse=False)


SECRET_KEY = env.str("SECRET_KEY", "") or local_secret_key(VAR_DIR)
DEBUG = env.bool("DEBUG", False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

# Behind TLS: secure cookies, redirect to https and HSTS (what `check --deploy` asks for).
HTTPS = env.bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, validate=Range(min=0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
# Preloading is a promise that is slow to take back (every subdomain, HTTPS only, in browsers' own lists):
# only when asked, so `check --deploy` is not told to want it either.
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if env.bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Debug pages and error reports mask credentials, also those inside URLs (REDIS_URL, DATABASE_URL).
DEFAULT_EXCEPTION_REPORTER_FILTER = "dashboard.error_reports.CredentialsFilter"
# Behind a proxy that appends the client's address to X-Forwarded-For (login throttling counts by it).
TRUST_X_FORWARDED_FOR = env.bool("TRUST_X_FORWARDED_FOR", False)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Scripts, styles, fetches and the live socket from this origin only; no inline script or style anywhere
# (htmx's inline indicator styles are switched off in base.html). File content sets a stricter one.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# Failed log-ins allowed per username and per client address in a minute; then a wait.
LOGIN_ATTEMPTS_PER_MINUTE = env.int("LOGIN_ATTEMPTS_PER_MINUTE", 5, validate=Range(min=1, max=1000))

INSTALLED_APPS = [
    "daphne",  # first, so `runserver` serves HTTP and WebSockets under ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "runs_ui",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "dashboard.static_files.AsyncWhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login; the sandbox API and the agent-registration endpoint opt out.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "runs_ui.roles.RolesMiddleware",
]

ROOT_URLCONF = "dashboard.urls"
ASGI_APPLICATION = "dashboard.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "runs_ui.context_processors.dashboard",
            ],
        },
    },
]

DATABASES = {
    "default": env.dj_db_url("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # IMMEDIATE takes the write lock when a transaction starts, so two processes advancing the same
    # sandbox run queue up instead of failing with "database is locked"; WAL lets readers carry on.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

REDIS_URL = env.str("REDIS_URL", "")
# Prefix of every Redis key (channel layer, leases, live state), so deployments can share a Redis.
REDIS_PREFIX = env.str("REDIS_PREFIX", "runs")
# The shared store (leases, versions, saved states) waits this long at most for a free pooled connection
# and for Redis to answer: a hung Redis shows as delayed live updates within seconds, never a stuck page.
REDIS_MAX_CONNECTIONS = env.int("REDIS_MAX_CONNECTIONS", 200, validate=Range(min=1))
REDIS_POOL_TIMEOUT = env.float("REDIS_POOL_TIMEOUT", 5.0, validate=Range(min=0.1))
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", 5.0, validate=Range(min=0.1))
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # channels_redis on a blocking pool (runs_ui/live/layer.py): thousands of sockets joining or
            # leaving at once wait for a connection instead of crashing with MaxConnectionsError.
            # The read timeout must exceed channels_redis's 5 s blocking pop, or a busy process times out
            # just before Redis answers and the socket dies.
            "BACKEND": "runs_ui.live.layer.BlockingPoolRedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": 1000,
                        "timeout": REDIS_POOL_TIMEOUT,
                        "socket_timeout": 30,
                        "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
                    }
                ],
                "prefix": f"{REDIS_PREFIX}:asgi",
                "capacity": 500,
                "expiry": 30,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# The cache holds login attempt counts: shared by every process through Redis, else per process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_PREFIX}:cache",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "runs_ui:home"
LOGOUT_REDIRECT_URL = "login"

# A tool-outputs form may carry many outputs of up to 512 K characters each (the API's limit), which form
# encoding can triple: above Django's 2.5 MB default. A larger body gets the 400 page, never a 500.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"  # for `collectstatic` in production
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# Files are served straight from static/ (no collectstatic step for a newcomer); names carry versions.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # One line per record, whatever a message quotes (dashboard/log_lines.py).
    "formatters": {
        "plain": {
            "()": "dashboard.log_lines.OneLineFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.log_level("LOG_LEVEL", "INFO")},
    # httpx logs every request line at INFO; the client logs what matters itself.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# --- The upstream Assistants API ---------------------------------------------------------------
PROFILES = list(
    UPSTREAM_PROFILES
)  # openai, azure-openai, azure-agents, openai-responses, azure-foundry, sandbox
# Unset = the built-in sandbox, reached over HTTP like any other upstream.
ASSISTANTS_API_BASE_URL = env.str("ASSISTANTS_API_BASE_URL", "")
ASSISTANTS_API_KEY = env.str("ASSISTANTS_API_KEY", "")
# Empty counts as unset: openai for a base URL, else the sandbox.
ASSISTANTS_API_PROFILE = env.str("ASSISTANTS_API_PROFILE", "", validate=OneOf(["", *PROFILES])) or (
    "openai" if ASSISTANTS_API_BASE_URL else "sandbox"
)
ASSISTANTS_API_VERSION = env.str("ASSISTANTS_API_VERSION", "")
UPSTREAM_TIMEOUT = env.float("UPSTREAM_TIMEOUT", 20.0, validate=Range(min=0.1))
UPSTREAM_CONNECT_TIMEOUT = env.float("UPSTREAM_CONNECT_TIMEOUT", 5.0, validate=Range(min=0.1))
UPSTREAM_RETRIES = env.int("UPSTREAM_RETRIES", 3, validate=Range(min=0, max=10))
# The most requests per second the live watchers of all processes together make to one connection.
UPSTREAM_MAX_RPS = env.float("UPSTREAM_MAX_RPS", 20.0, validate=Range(min=0.1))
# What the dashboard reads of an upstream (runs_ui/upstream/limits.py); a page that hits one says which.
# Seconds one call may take in all (every attempt and retry wait); UPSTREAM_TIMEOUT is per read.
UPSTREAM_DEADLINE = env.float("UPSTREAM_DEADLINE", 30.0, validate=Range(min=0.1))
UPSTREAM_MAX_BODY_BYTES = env.int("UPSTREAM_MAX_BODY_BYTES", 16 * MiB, validate=Range(min=1024))
UPSTREAM_MAX_PAGES = env.int("UPSTREAM_MAX_PAGES", 5_000, validate=Range(min=1))
# Per walk over a list, and per export (a 50,000-step run exports whole).
UPSTREAM_MAX_ITEMS = env.int("UPSTREAM_MAX_ITEMS", 200_000, validate=Range(min=1))
UPSTREAM_STREAM_MAX_SECONDS = env.float("UPSTREAM_STREAM_MAX_SECONDS", 900.0, validate=Range(min=0.1))
UPSTREAM_STREAM_MAX_BYTES = env.int("UPSTREAM_STREAM_MAX_BYTES", 64 * MiB, validate=Range(min=1024))
UPSTREAM_STREAM_MAX_EVENTS = env.int("UPSTREAM_STREAM_MAX_EVENTS", 100_000, validate=Range(min=1))
UPSTREAM_STREAM_MAX_LINE_BYTES = env.int("UPSTREAM_STREAM_MAX_LINE_BYTES", 4 * MiB, validate=Range(min=1024))
# Fernet key for API keys of connections added in the admin; derived from SECRET_KEY when unset.
CONNECTIONS_ENCRYPTION_KEY = env.str("CONNECTIONS_ENCRYPTION_KEY", "")

# --- The built-in sandbox API --------------------------------------------------------------------
# Served at /sandbox/v1/ only when it is the upstream (no base URL), unless this says otherwise: with a
# real upstream it would be a database-writing endpoint guarded by a derived key alone.
SANDBOX_MOUNT = env.bool("SANDBOX_MOUNT", not ASSISTANTS_API_BASE_URL)
PORT = env.int("PORT", 8000, validate=Range(min=1, max=65535))
SANDBOX_BASE_URL = env.str("SANDBOX_BASE_URL", f"http://127.0.0.1:{PORT}/sandbox/v1")
# The key the sandbox accepts (and the default connection sends); unique per installation.
SANDBOX_API_KEY = env.str("SANDBOX_API_KEY", "") or sandbox_api_key(SECRET_KEY)
SANDBOX_SPEED = env.float("SANDBOX_SPEED", 1.0, validate=Range(min=0.01, max=1000))
SANDBOX_LATENCY_MS = env.int("SANDBOX_LATENCY_MS", 0, validate=Range(min=0, max=60_000))
# The `openai-poll-after-ms` hint sent with runs (divided by the run's speed).
SANDBOX_POLL_AFTER_MS = env.int("SANDBOX_POLL_AFTER_MS", 500, validate=Range(min=10, max=60_000))
# A file to append one JSON line per API request to (method, path, user agent): for tests counting calls.
SANDBOX_REQUEST_LOG = env.str("SANDBOX_REQUEST_LOG", "")

# --- Dashboard behaviour -------------------------------------------------------------------------
READ_ONLY = env.bool("READ_ONLY", False)
AUDIT_HASH_TOOL_OUTPUTS = env.bool("AUDIT_HASH_TOOL_OUTPUTS", False)


def _long_enough_token(value: str) -> None:
    if value and len(value) < INDEX_API_TOKEN_MIN_LENGTH:
        raise ValidationError(
            f"INDEX_API_TOKEN is {len(value)} characters; a token must have at least "
            f"{INDEX_API_TOKEN_MIN_LENGTH} (e.g. from python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'), or be empty to switch the endpoint off."
        )


# Bearer token agent applications use to register threads; empty = the endpoint is off. A short one
# could be guessed: refused at start-up.
INDEX_API_TOKEN_MIN_LENGTH = 32
INDEX_API_TOKEN = env.str("INDEX_API_TOKEN", "", validate=_long_enough_token)
# How often a watched run is polled, by who looks at it: on a run page (0.6 s leaves its budget of
# 2 GET/s room for steps and messages), on a thread page, only on the home list or inbox (4 s keeps a
# row's p95 under 5 s).
WATCH_FAST_SECONDS = env.float("WATCH_FAST_SECONDS", 0.6, validate=Range(min=0.05))
WATCH_THREAD_SECONDS = env.float("WATCH_THREAD_SECONDS", 2.0, validate=Range(min=0.05))
WATCH_SLOW_SECONDS = env.float("WATCH_SLOW_SECONDS", 4.0, validate=Range(min=0.1))
WATCH_LEASE_SECONDS = env.float("WATCH_LEASE_SECONDS", 5.0, validate=Range(min=1))
CANCEL_STUCK_SECONDS = env.int("CANCEL_STUCK_SECONDS", 60, validate=Range(min=1))
# Each process looks after its sockets this often: missed pushes, the store coming back, dead watches.
LIVE_PROBE_SECONDS = env.float("LIVE_PROBE_SECONDS", 2.0, validate=Range(min=0.05))
# A socket's session is checked again this often (logout, deactivation or a role change take effect).
LIVE_SESSION_CHECK_SECONDS = env.float("LIVE_SESSION_CHECK_SECONDS", 30.0, validate=Range(min=0.05))
# The home list follows the active latest runs of this many threads; the inbox this many active runs.
LIVE_INDEX_WATCH_LIMIT = env.int("LIVE_INDEX_WATCH_LIMIT", 50, validate=Range(min=0))
LIVE_INBOX_WATCH_LIMIT = env.int("LIVE_INBOX_WATCH_LIMIT", 1000, validate=Range(min=0))
# Bearer token for GET /metrics (Prometheus); empty = the endpoint is off.
METRICS_TOKEN = env.str("METRICS_TOKEN", "")

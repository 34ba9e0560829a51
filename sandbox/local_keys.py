"""Keys both settings modules (the dashboard's and the sandbox's own) compute the same way, so the
sandbox and the dashboard of one checkout agree on them with nothing configured. Plain Python: settings
import it before Django is set up."""

import hashlib
import hmac
import secrets
from pathlib import Path


def local_secret_key(var_dir: Path) -> str:
    """A per-checkout key kept in var/secret-key, so no shared secret ships with the code."""
    path = var_dir / "secret-key"
    if not path.exists():
        var_dir.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


def derived(secret_key: str, purpose: str) -> str:
    """A value for `purpose` derived from the secret key (hex)."""
    return hmac.new(secret_key.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def sandbox_api_key(secret_key: str) -> str:
    """The key the sandbox accepts (and the default connection sends) when SANDBOX_API_KEY is unset."""
    return f"sk-sandbox-{derived(secret_key, 'sandbox-api-key')[:32]}"

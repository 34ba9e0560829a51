"""Debug pages and error reports without credentials: settings and request data that hold them are masked.

Django already hides settings named like a key, token, secret or password. Credentials also hide inside
URLs: REDIS_URL (and the channel layer's host address made from it) and DATABASE_URL carry passwords as
`scheme://user:password@host`. This filter masks such passwords in any value, and the whole value of
anything named like a connection URL.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter

# `scheme://user:password@` → the password part.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:)(?P<password>[^/@\s]+)(?=@)")


class CredentialsFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|CREDENTIAL|DATABASE_URL|REDIS_URL|DSN",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _URL_PASSWORD.sub(rf"\g<head>{self.cleansed_substitute}", cleansed)
        return cleansed

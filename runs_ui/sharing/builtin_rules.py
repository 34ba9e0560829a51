"""The built-in redaction rules: what personal data and secrets look like, in one combined pattern.

Every kind is one or more branches of a single regular expression, so a string is scanned once whatever
the number of rules; a branch's shape is then confirmed by a check (Luhn, IBAN mod 97, a parsable IP
address, a JWT header that is JSON, …), and a candidate the check refuses is left as it was.

Why by hand and not a library (phonenumbers, …): the scan runs over every string of a shared page, and
a pure-Python matcher per kind would multiply the page's rendering time. Each branch starts with a
look-behind that refuses to start inside a word or number, and uses possessive repeats where a retry
could only fail again, so a scan stays linear in the length of the text, however hostile.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

#: Built-in rule → what it covers (for the admin) and the labels its redactions show.
BUILTINS: dict[str, str] = {
    "email": "Email addresses",
    "phone": "Phone numbers (international +…, North American, and national numbers with a leading 0)",
    "card": "Payment card numbers (13–19 digits that pass the Luhn check)",
    "iban": "IBANs (country length and mod-97 checksum verified)",
    "secret": "Bearer/Basic tokens, API keys (sk-…, ghp_…, AKIA…, xox…-…) and password=… values",
    "jwt": "JSON Web Tokens",
    "ip": "IP addresses (v4 and v6)",
}

# Registered IBAN lengths by country (SWIFT IBAN registry): a candidate of another length is not an IBAN.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip


@dataclass(frozen=True)
class Branch:
    """One shape of one rule: its pattern, the label it shows, and the check that confirms a candidate.

    `check(text, start, end)` returns where the confirmed value ends (≤ `end`: some shapes are greedy and
    the check trims them), or None to leave the candidate alone. `keep` is the named group of the match
    that stays visible (the word "Bearer", the name in `password=…`).
    """

    rule: str
    label: str
    pattern: str
    check: Callable[[str, int, int], int | None] | None = None
    keep: str | None = None
    #: A character every match contains: texts without it skip this branch.
    needs: str | None = None


def _ascii(pattern: str) -> str:
    """Digits and word characters in the ASCII sense: "٤" is not a digit of a card number."""
    return f"(?a:{pattern})"


def _always(text: str, start: int, end: int) -> int:
    return end


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def check_card(text: str, start: int, end: int) -> int | None:
    digits = "".join(ch for ch in text[start:end] if ch.isdigit())
    # Card numbers start with 2 to 6 (Mastercard 2-series, Amex/Diners/JCB 3, Visa 4, Mastercard/Maestro 5,
    # Discover/UnionPay 6); only Visa has 13 digits. This keeps millisecond timestamps (1…) out.
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or (len(digits) == 13 and digits[0] != "4"):
        return None
    return end if _luhn(digits) else None


def _iban_ok(compact: str) -> bool:
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def check_iban(text: str, start: int, end: int) -> int | None:
    """The printed form (groups of four) is greedy: trim trailing groups until the country's length fits."""
    candidate = text[start:end]
    while True:
        if _iban_ok(candidate.replace(" ", "")):
            return start + len(candidate)
        cut = candidate.rfind(" ")
        if cut <= 4:
            return None
        candidate = candidate[:cut]


_VERSION_WORDS = re.compile(r"(?:version|release|build|ver|rev)\.?\s*$", re.IGNORECASE)


def check_ipv4(text: str, start: int, end: int) -> int | None:
    try:
        ipaddress.IPv4Address(text[start:end])  # refuses octets > 255 and leading zeros
    except ValueError:
        return None
    if _VERSION_WORDS.search(text, max(0, start - 12), start):
        return None  # "version 1.2.3.4" is a version
    return end


def check_ipv6(text: str, start: int, end: int) -> int | None:
    candidate = text[start:end]
    # "::1", "1::2" (a Python slice) and "ab::" carry nothing personal and look like other things.
    if len(candidate) < 6 or sum(1 for group in candidate.split(":") if group) < 2:
        return None
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return end


def check_jwt(text: str, start: int, end: int) -> int | None:
    header = text[start : text.index(".", start)]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return end if isinstance(decoded, dict) else None


def check_email(text: str, start: int, end: int) -> int | None:
    domain = text[text.index("@", start) + 1 : end]
    if re.fullmatch(r"\d+(?:\.\d+)?x\.(?:png|jpe?g|gif|webp|svg|avif)", domain, re.IGNORECASE):
        return None  # icon@2x.png is a file name
    return end


def _digit_count(text: str, start: int, end: int) -> int:
    return sum(1 for ch in text[start:end] if ch.isdigit())


def check_phone_international(text: str, start: int, end: int) -> int | None:
    return end if 8 <= _digit_count(text, start, end) <= 15 else None


def check_phone_national(text: str, start: int, end: int) -> int | None:
    return end if 9 <= _digit_count(text, start, end) <= 12 else None


def check_api_key(text: str, start: int, end: int) -> int | None:
    value = text[start:end]
    # Keys are random: letters and digits both. "sk-this-is-a-long-slug-name" is not a key.
    return end if any(c.isdigit() for c in value) and any(c.isalpha() for c in value[3:]) else None


# Order matters where shapes overlap: the first branch that matches at a position decides the kind.
BRANCHES: tuple[Branch, ...] = (
    Branch(
        "secret",
        "token",
        r"(?P<token_keep>(?<![A-Za-z0-9])(?i:bearer|basic)[ \t]+)[A-Za-z0-9\-._~+/]{8,}+=*+",
        _always,
        keep="token_keep",
    ),
    Branch(
        "jwt", "jwt", r"(?<![\w-])eyJ[A-Za-z0-9_-]{4,}+\.eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+", check_jwt
    ),
    Branch(
        "secret",
        "api-key",
        r"(?<![\w-])(?:sk-[A-Za-z0-9_-]{20,}+|[srp]k_(?:live|test)_[A-Za-z0-9]{16,}+|gh[pousr]_[A-Za-z0-9]{30,}+"
        r"|github_pat_[A-Za-z0-9_]{30,}+|xox[abposr]-[A-Za-z0-9-]{10,}+|glpat-[A-Za-z0-9_-]{20,}+"
        r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35})(?![\w-])",
        check_api_key,
    ),
    Branch(
        "secret",
        "secret",
        r"(?P<secret_keep>(?<![A-Za-z0-9])(?i:api[_-]?key|secret|client[_-]?secret|password|passwd|pwd"
        r"|access[_-]?token|auth[_-]?token|refresh[_-]?token)[\"']?[ \t]*[:=][ \t]*[\"']?)"
        r"(?!\[)[^\s\"',;&}]{6,}+",
        _always,
        keep="secret_keep",
    ),
    Branch(
        "email",
        "email",
        r"(?<![\w.%+-])[\w.%+-]{1,64}+@(?:[\w-]{1,63}+\.)+[^\W\d_]{2,63}+(?![\w-])",
        check_email,
        needs="@",
    ),
    Branch(
        "iban",
        "iban",
        _ascii(
            r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)"
            r"(?![A-Za-z0-9])"
        ),
        check_iban,
    ),
    Branch(
        "card",
        "card",
        _ascii(
            r"(?<![\w.,+-])(?:\d{13,19}+|\d{4}(?P<card_sep>[ -])\d{4}(?P=card_sep)\d{4}(?P=card_sep)\d{1,4}"
            r"(?:(?P=card_sep)\d{1,3})?|\d{4}(?P<amex_sep>[ -])\d{6}(?P=amex_sep)\d{4,5})(?!\d|[.,]\d)"
        ),
        check_card,
    ),
    Branch("ip", "ip", _ascii(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"), check_ipv4),
    Branch(
        "ip",
        "ip",
        r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\.\d{1,3}){3})?(?![\w:])",
        check_ipv6,
        needs=":",
    ),
    Branch(
        "phone",
        "phone",
        _ascii(r"(?<![\w+])\+[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}+(?!\w)"),
        check_phone_international,
    ),
    Branch(
        "phone",
        "phone",
        _ascii(
            r"(?<![\w+.\-])(?:\(\d{3}\)[ .\-]?\d{3}[ .\-]|\d{3}(?P<nanp_sep>[ .\-])\d{3}(?P=nanp_sep))\d{4}"
            r"(?!\w|[.\-]\d)"
        ),
        check_phone_national,
    ),
    Branch(
        "phone",
        "phone",
        _ascii(
            r"(?<![\w+.\-])0\d{1,4}(?P<trunk_sep>[ .\-])\d{2,4}(?:(?P=trunk_sep)\d{2,4}){1,3}+(?!\w|[.\-]\d)"
        ),
        check_phone_national,
    ),
)

#: Every label a built-in rule can show, e.g. "[api-key]".
LABELS = frozenset(branch.label for branch in BRANCHES)

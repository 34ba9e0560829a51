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

    `check(text, start, end, floor)` returns where the confirmed value ends (≤ `end`: some shapes are greedy
    and the check trims them), or None to leave the candidate alone; `floor` is where the previous
    redaction ended (a check reads no context before it). `prefix` matches the part of a match
    that stays visible (the word "Bearer", the name in `password=…`); the value starts after it.
    """

    rule: str
    label: str
    pattern: str
    #: The pattern without its opening look-behind: what matches right after a redacted value, where the
    #: character before is "]" once redacted.
    after_label: str
    check: Callable[..., int | None]
    prefix: re.Pattern | None = None
    #: What every match contains ("@", ":", or "digit" for an ASCII digit): texts without it skip the branch.
    needs: str | None = None


def _always(text: str, start: int, end: int, floor: int = 0) -> int:
    return end


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def check_card(text: str, start: int, end: int, floor: int = 0) -> int | None:
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


def check_iban(text: str, start: int, end: int, floor: int = 0) -> int | None:
    """The printed form (groups of four) is greedy: trim trailing groups until the country's length fits."""
    candidate = text[start:end]
    while True:
        if _iban_ok(candidate.replace(" ", "")):
            return start + len(candidate)
        cut = candidate.rfind(" ")
        if cut <= 4:
            return None
        candidate = candidate[:cut]


_VERSION_WORDS = re.compile(r"(?<![A-Za-z])(?:version|release|build|ver|rev)\.?\s*$", re.IGNORECASE)


def check_ipv4(text: str, start: int, end: int, floor: int = 0) -> int | None:
    try:
        ipaddress.IPv4Address(text[start:end])  # refuses octets > 255 and leading zeros
    except ValueError:
        return None
    # Only the text since the previous redaction counts (it reads the same once that one is a label).
    if _VERSION_WORDS.search(text, max(floor, start - 12), start):
        return None  # "version 1.2.3.4" is a version
    return end


def check_ipv6(text: str, start: int, end: int, floor: int = 0) -> int | None:
    candidate = text[start:end]
    # "::1", "1::2" (a Python slice) and "ab::" carry nothing personal and look like other things.
    if len(candidate) < 6 or sum(1 for group in candidate.split(":") if group) < 2:
        return None
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return None
    return end


def check_jwt(text: str, start: int, end: int, floor: int = 0) -> int | None:
    header = text[start : text.index(".", start)]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return end if isinstance(decoded, dict) else None


def check_email(text: str, start: int, end: int, floor: int = 0) -> int | None:
    domain = text[text.index("@", start) + 1 : end]
    if re.fullmatch(r"\d+(?:\.\d+)?x\.(?:png|jpe?g|gif|webp|svg|avif)", domain, re.IGNORECASE):
        return None  # icon@2x.png is a file name
    return end


def _digit_count(text: str, start: int, end: int) -> int:
    return sum(1 for ch in text[start:end] if ch.isdigit())


def check_phone_international(text: str, start: int, end: int, floor: int = 0) -> int | None:
    return end if 8 <= _digit_count(text, start, end) <= 15 else None


def check_phone_national(text: str, start: int, end: int, floor: int = 0) -> int | None:
    return end if 9 <= _digit_count(text, start, end) <= 12 else None


def check_api_key(text: str, start: int, end: int, floor: int = 0) -> int | None:
    value = text[start:end]
    # Keys are random: letters and digits both. "sk-this-is-a-long-slug-name" is not a key.
    return end if any(c.isdigit() for c in value) and any(c.isalpha() for c in value[3:]) else None


def _branch(rule, label, first, before, rest, check, *, prefix=None, needs=None, ascii=False) -> Branch:
    """A branch: its first character (a class), "not preceded by `before`", then the rest.

    The first character comes before the look-behind (which then spans two characters) because the regex
    engine skips an alternative at once when its first character cannot match there, and tries it in
    full otherwise: most positions of a text then cost one table look-up per branch. `ascii`: digits and
    word characters in the ASCII sense ("٤" is not a digit of a card number).
    """

    def wrap(pattern: str) -> str:
        return f"(?a:{pattern})" if ascii else pattern

    return Branch(
        rule,
        label,
        pattern=wrap(f"{first}(?<!{before}.){rest}"),
        after_label=wrap(f"{first}{rest}"),
        check=check,
        prefix=prefix,
        needs=needs,
    )


_API_KEY_END = r"(?![\w-])"

# Order matters where shapes overlap: the first branch that matches at a position decides the kind.
BRANCHES: tuple[Branch, ...] = (
    _branch(
        "secret",
        "token",
        "[Bb]",
        "[A-Za-z0-9]",
        r"(?i:earer|asic)[ \t]+[A-Za-z0-9\-._~+/]{8,}+=*+",
        _always,
        prefix=re.compile(r"(?i:bearer|basic)[ \t]+"),
    ),
    _branch(
        "jwt",
        "jwt",
        "e",
        r"[\w-]",
        r"yJ[A-Za-z0-9_-]{4,}+\.eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]*+",
        check_jwt,
    ),
    _branch(
        "secret",
        "api-key",
        "s",
        r"[\w-]",
        r"(?:k-[A-Za-z0-9_-]{20,}+|k_(?:live|test)_[A-Za-z0-9]{16,}+)" + _API_KEY_END,
        check_api_key,
        needs="digit",
    ),
    _branch(
        "secret",
        "api-key",
        "[rp]",
        r"[\w-]",
        r"k_(?:live|test)_[A-Za-z0-9]{16,}+" + _API_KEY_END,
        check_api_key,
        needs="digit",
    ),
    _branch(
        "secret",
        "api-key",
        "g",
        r"[\w-]",
        r"(?:h[pousr]_[A-Za-z0-9]{30,}+|ithub_pat_[A-Za-z0-9_]{30,}+|lpat-[A-Za-z0-9_-]{20,}+)"
        + _API_KEY_END,
        check_api_key,
        needs="digit",
    ),
    _branch(
        "secret",
        "api-key",
        "x",
        r"[\w-]",
        r"ox[abposr]-[A-Za-z0-9-]{10,}+" + _API_KEY_END,
        check_api_key,
        needs="digit",
    ),
    _branch(
        "secret",
        "api-key",
        "A",
        r"[\w-]",
        r"(?:KIA[0-9A-Z]{16}|Iza[0-9A-Za-z_-]{35})" + _API_KEY_END,
        check_api_key,
        needs="digit",
    ),
    # The first letter of any of the names; the name itself is checked by `prefix`.
    _branch(
        "secret",
        "secret",
        "[AaSsCcPpRr]",
        "[A-Za-z0-9]",
        r"(?i:pi[_-]?key|ecret|lient[_-]?secret|assword|asswd|wd|ccess[_-]?token|uth[_-]?token"
        r"|efresh[_-]?token)[\"']?[ \t]*[:=][ \t]*[\"']?(?!\[)[^\s\"',;&}]{6,}+",
        _always,
        prefix=re.compile(
            r"(?i:api[_-]?key|secret|client[_-]?secret|password|passwd|pwd|access[_-]?token|auth[_-]?token"
            r"|refresh[_-]?token)[\"']?[ \t]*[:=][ \t]*[\"']?"
        ),
    ),
    _branch(
        "email",
        "email",
        r"[\w.%+-]",
        r"[\w.%+-]",
        r"[\w.%+-]{0,63}+@(?:[\w-]{1,63}+\.)+[^\W\d_]{2,63}+(?![\w-])",
        check_email,
        needs="@",
    ),
    _branch(
        "iban",
        "iban",
        "[A-Z]",
        "[A-Za-z0-9]",
        r"[A-Z]\d{2}(?:[A-Z0-9]{11,30}+|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])",
        check_iban,
        ascii=True,
        needs="digit",
    ),
    # Card numbers start with 2 to 6 (see check_card).
    _branch(
        "card",
        "card",
        "[2-6]",
        r"[\w.,+-]",
        r"(?:\d{12,18}+|\d{3}(?P<card_sep>[ -])\d{4}(?P=card_sep)\d{4}(?P=card_sep)\d{1,4}"
        r"(?:(?P=card_sep)\d{1,3})?|\d{3}(?P<amex_sep>[ -])\d{6}(?P=amex_sep)\d{4,5})(?!\d|[.,]\d)",
        check_card,
        ascii=True,
        needs="digit",
    ),
    _branch(
        "ip",
        "ip",
        r"\d",
        r"[\w.]",
        r"\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?!\w|\.\d)",
        check_ipv4,
        ascii=True,
        needs="digit",
    ),
    _branch(
        "ip",
        "ip",
        "[0-9A-Fa-f:]",
        r"[\w:.]",
        r"[0-9A-Fa-f]{0,3}+(?::[0-9A-Fa-f]{0,4}+){1,7}+(?:(?:\.\d{1,3}){3})?(?![\w:])",
        check_ipv6,
        needs=":",
    ),
    _branch(
        "phone",
        "phone",
        r"\+",
        r"[\w+]",
        r"[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,5})){1,6}+(?!\w)",
        check_phone_international,
        ascii=True,
        needs="digit",
    ),
    _branch(
        "phone",
        "phone",
        r"[(\d]",
        r"[\w+.\-]",
        r"(?:(?<=\()\d{3}\)[ .\-]?\d{3}[ .\-]|(?<=\d)\d{2}(?P<nanp_sep>[ .\-])\d{3}(?P=nanp_sep))\d{4}"
        r"(?!\w|[.\-]\d)",
        check_phone_national,
        ascii=True,
        needs="digit",
    ),
    _branch(
        "phone",
        "phone",
        "0",
        r"[\w+.\-]",
        r"\d{1,4}(?P<trunk_sep>[ .\-])\d{2,4}(?:(?P=trunk_sep)\d{2,4}){1,3}+(?!\w|[.\-]\d)",
        check_phone_national,
        ascii=True,
        needs="digit",
    ),
)

#: Every label a built-in rule can show, e.g. "[api-key]".
LABELS = frozenset(branch.label for branch in BRANCHES)

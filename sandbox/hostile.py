"""Hostile strings the demo data puts where a dashboard must escape them (both API shapes)."""

HOSTILE_TEXTS = [
    "<script>alert(1)</script> Is this <b>escaped</b>?",
    "<img src=x onerror=alert(1)> and \"quotes\" & 'apostrophes'",
    '[click me](javascript:alert(1)) or <a href="javascript:alert(2)">this</a>',
    ("<div>big</div> " * 20_000)[:200_000],
]

"""Log lines that cannot be forged: whatever a message quotes (an upstream's error text) stays on its line.

An upstream's message with CR or LF in it would otherwise start what looks like a log line of its own.
The formatter escapes control characters in every message (tracebacks, added after it, keep their lines).
"""

from __future__ import annotations

import logging

from runs_ui.upstream.text import one_line


class OneLineFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

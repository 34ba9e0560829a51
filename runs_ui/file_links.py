"""Links to file content that carry their own proof: the file proxy serves only files a page referred to.

A page or a live push that draws a file (an image in a message, a code-interpreter image in a step) signs
its link: a signature of the connection and the file id, made with SECRET_KEY. The proxy (views/files.py)
serves a file only with that signature, so it never serves just any file the server's key can read. The
proof travels in the link rather than in a table of references: it holds for pushes rendered outside any
view, in every process, and costs no database write per page.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.signing import Signer
from django.utils.crypto import constant_time_compare

from .links import url_for
from .upstream.objects import is_id

_signer = Signer(salt="runs_ui.file-reference")


def _signature(connection: str, file_id: str) -> str:
    return _signer.signature(f"{connection}\x1f{file_id}")


def file_url(connection: str, file_id: str) -> str:
    """The proxied content of a file something on the page refers to ("" for what is not a file id)."""
    if not is_id("file", file_id):
        return ""
    query = urlencode({"ref": _signature(connection, file_id)})
    return f"{url_for('file-content', connection, file_id=file_id)}?{query}"


def referred(connection: str, file_id: str, ref: str) -> bool:
    """Whether `ref` is the signature a page drew for this file on this connection."""
    return constant_time_compare(ref, _signature(connection, file_id))

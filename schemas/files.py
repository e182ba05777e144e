"""Bodies of the file endpoints (API.md §8)."""

from __future__ import annotations

from schemas.common import Out


class FileOut(Out):
    id: str
    name: str
    size: int
    mime: str
    sha256: str

"""Bodies of the audit log endpoint (API.md §11)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.common import Out


class AuditEntryOut(Out):
    id: str
    at: datetime
    actor_id: str
    action: str  # e.g. member.update, member.roles, member.password, study.attendance.mark, suggestion.reply
    target_kind: str
    target_id: str
    org_id: str | None  # the org of the record acted on
    before: Any = None  # the values before the change, where a value changed (phone numbers masked)
    after: Any = None
    details: dict[str, Any] = {}  # what else the entry is about (the session of a mark, the fields edited)
    reason: str | None = None


class AuditPage(Out):
    items: list[AuditEntryOut]
    next_cursor: str | None

"""Append-only audit log of every organiser change to someone else's record (DESIGN.md)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from server.context import Context
from server.db import indexes
from server.ids import new_id

COLLECTION = "audit_log"

indexes(
    COLLECTION,
    IndexModel([("target_id", ASCENDING), ("at", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("at", DESCENDING)]),
)


async def record(
    ctx: Context,
    *,
    actor_id: str,
    action: str,
    target_kind: str,
    target_id: str,
    org_path: list[str],
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    txn=None,
) -> None:
    """Append one entry. Nothing ever updates or deletes these documents."""
    await ctx.db[COLLECTION].insert_one(
        entry(ctx, actor_id=actor_id, action=action, target_kind=target_kind, target_id=target_id,
              org_path=org_path, changes=changes, reason=reason),
        session=txn,
    )


def entry(ctx: Context, *, actor_id: str, action: str, target_kind: str, target_id: str, org_path: list[str],
          changes: dict[str, Any] | None = None, reason: str | None = None) -> dict:
    """One entry as stored: what `record` appends, and bulk writers (the member import) insert many of."""
    return {
        "_id": new_id(),
        "at": ctx.now(),
        "actor_id": actor_id,
        "action": action,
        "target_kind": target_kind,
        "target_id": target_id,
        "org_path": org_path,
        "changes": changes or {},
        "reason": reason,
    }

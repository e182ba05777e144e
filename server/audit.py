"""The append-only audit log: every organiser change to someone else's record, and how admins read it.

An entry says who (`actor_id`) did what (`action`) to which record (`target_kind`, `target_id`), in which
org subtree (`org_path`, so an admin's scope is one indexed equality), and, where a value changed,
`before` and `after`; `details` names what else the entry is about (the session of a mark), `reason` the
words the actor gave. Phone numbers are masked on the way in, wherever they sit in an entry.

Append-only: `record` and `append_many` are the only code that writes the collection and they only
insert; no route and no code path updates or deletes an entry (tests/test_audit.py reads the code to hold
this). A member who is anonymised keeps their entries: they are the record of what was done to them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from server import orgs
from server.context import Context
from server.db import indexes
from server.ids import new_id
from server.pagination import Keyset, page
from server.scope import Principal

COLLECTION = "audit_log"

# GET /audit filters on equality (org_path, then actor or target), ranges on `at` and pages by `_id`
# (newest first): each index is its query's equality keys, then the sort key (`at` is checked on the
# documents the index walks).
indexes(
    COLLECTION,
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("actor_id", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("target_id", ASCENDING), ("_id", DESCENDING)]),
    # a member's own entries (GET /me/export): about their record, or about a record of theirs (a warning)
    IndexModel([("target_id", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("details.member_id", ASCENDING), ("_id", DESCENDING)], sparse=True),
)

# A value that is a phone number (the stored form: digits, an optional "+"); in free text (the reason), any
# run of 7 or more digits. Ids are 24 hex characters, never all digits of this length.
_PHONE = re.compile(r"\+?[0-9]{6,15}")
_PHONE_IN_TEXT = re.compile(r"\+?[0-9]{7,15}")


def _mask(phone: str) -> str:
    from server.members import mask_phone  # members imports this module

    return mask_phone(phone)


def _masked(value: Any) -> Any:
    """`value` with every phone number masked and dates as ISO text (the entry is stored as is)."""
    if isinstance(value, str):
        return _mask(value) if _PHONE.fullmatch(value) else value
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


async def record(
    ctx: Context,
    *,
    actor_id: str,
    action: str,
    target_kind: str,
    target_id: str,
    org_path: list[str],
    before: Any = None,
    after: Any = None,
    details: dict[str, Any] | None = None,
    reason: str | None = None,
    txn=None,
) -> None:
    """Append one entry (in the caller's transaction when `txn` is given). Nothing updates or deletes it."""
    await ctx.db[COLLECTION].insert_one(
        entry(ctx, actor_id=actor_id, action=action, target_kind=target_kind, target_id=target_id,
              org_path=org_path, before=before, after=after, details=details, reason=reason),
        session=txn,
    )


async def append_many(ctx: Context, entries: list[dict], *, txn) -> None:
    """Append entries made with `entry` (bulk writers: the member import), in the caller's transaction."""
    if entries:
        await ctx.db[COLLECTION].insert_many(entries, session=txn)


def entry(ctx: Context, *, actor_id: str, action: str, target_kind: str, target_id: str, org_path: list[str],
          before: Any = None, after: Any = None, details: dict[str, Any] | None = None,
          reason: str | None = None) -> dict:
    """One entry as stored, phones masked: what `record` appends, and `append_many` appends many of."""
    return {
        "_id": new_id(),
        "at": ctx.now(),
        "actor_id": actor_id,
        "action": action,
        "target_kind": target_kind,
        "target_id": target_id,
        "org_path": list(org_path),
        "before": _masked(before),
        "after": _masked(after),
        "details": _masked(details or {}),
        "reason": _PHONE_IN_TEXT.sub(lambda m: _mask(m.group(0)), reason) if reason is not None else None,
    }


def entry_out(doc: dict) -> dict:
    # Entries written before `before`/`after`/`details` had fields of their own kept them all in `changes`; the
    # log is append-only, so they are read as they are rather than rewritten.
    legacy = dict(doc.get("changes") or {})
    before, after = doc.get("before", legacy.pop("before", None)), doc.get("after", legacy.pop("after", None))
    return {"id": doc["_id"], "at": doc["at"], "actor_id": doc["actor_id"], "action": doc["action"],
            "target_kind": doc["target_kind"], "target_id": doc["target_id"],
            "org_id": doc["org_path"][-1] if doc["org_path"] else None,
            "before": before, "after": after, "details": doc.get("details") or legacy, "reason": doc.get("reason")}


def list_query(principal: Principal, org_id: str | None, actor_id: str | None = None, target_id: str | None = None,
               since: datetime | None = None, until: datetime | None = None) -> Keyset:
    """GET /audit's query, newest first: one branch per admin subtree (or `org_id`'s), with the actor or
    the target as the index's second key (the other and the time range narrow the walk)."""
    roots = principal.list_roots(org_id, "admin")
    second = {"actor_id": actor_id} if actor_id is not None else {"target_id": target_id} if target_id else {}
    narrow: list[dict] = [{"target_id": target_id}] if actor_id is not None and target_id is not None else []
    at = {**({"$gte": since} if since is not None else {}), **({"$lt": until} if until is not None else {})}
    if at:
        narrow.append({"at": at})
    return Keyset(tuple({"org_path": root, **second} for root in roots), descending=True, narrow=tuple(narrow))


async def list_entries(ctx: Context, principal: Principal, *, org_id: str | None, actor_id: str | None,
                       target_id: str | None, since: datetime | None, until: datetime | None, limit: int,
                       cursor: str | None) -> tuple[list[dict], str | None]:
    """Entries within the caller's admin subtrees (or `org_id`'s, which must be one of them), newest first."""
    await orgs.require_lister(ctx, principal, org_id, "admin", "Reading the audit log needs the admin role.")
    docs, next_cursor = await page(ctx.db[COLLECTION], list_query(principal, org_id, actor_id, target_id, since, until),
                                   limit, cursor)
    return [entry_out(d) for d in docs], next_cursor

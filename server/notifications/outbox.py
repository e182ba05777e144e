"""The outbox: how an event becomes feed notices and WeChat deliveries, in the transaction of the change.

`enqueue(ctx, txn, ...)` is the one way in. Inside the caller's transaction it writes, for each active
member, the feed notice (server/feed/writing.py `notify`, same `txn`; not for the events whose ref's own
feed item tells it, `Event.notice`: those write nothing at all while WeChat is off for them) and one
delivery record in `notification_deliveries`, then registers an on-commit hook that wakes this process's sender. So a
change that rolls back leaves no notice and no delivery, and a change that committed has its
deliveries on disk before anything is sent: a process that dies after the commit loses nothing, the
sender (of whichever process holds its lease, server/notifications/sender.py) finds them pending.

A delivery: `{member_id, event, ref_kind, ref_id, org_id, title, summary, values, template (a snapshot:
template_id, page, fields), wechat, attempts, last_error, next_attempt_at, created_at, sent_at}`.
`wechat` is decided here for what cannot change before sending: `off` (WeChat not configured, or the
event's template not configured or disabled), `muted` (the member muted the event), `no_grant` (no
grant for the template now); the rest are `pending`, later `sending`, then `sent`, `failed` or
`no_grant` (server/notifications/sender.py). `org_id` is the org the ref belongs to: organisers in
its scope read the deliveries (server/notifications/deliveries.py).

Dedupe (reminders: one per member and occurrence): with `dedupe_key`, `(event, member, dedupe_key)`
is claimed in `notification_dedupe` (its `_id`, unique) in the same transaction, and members whose
key exists already are left out. Two transactions racing for one key: the one that commits second
either sees the other's key in its snapshot (skips it), or meets it on insert. MongoDB answers that
with a write conflict, which aborts the transaction and is retried by `db.transaction`; a
DuplicateKeyError there (the key committed between the snapshot and the insert) is given the same
label, TransientTransactionError, so it too retries the whole unit of work (never half of it:
inside a transaction a failed write has already aborted it) and the retry's snapshot sees the key.
So across processes each key enqueues once, and a duplicate never fails the caller's change.

A key is needed only while its occurrence can still be due: a reminder is queued at most a day before its
start (`lead_minutes` ≤ 1,440) and never after it, a sign-up's opening is sent once its request is marked
sent, an announcement's reminder has a key of its own claim. `purge_dedupe` (run by each process's
retention sweep, server/retention.py) deletes keys claimed more than DEDUPE_KEPT ago, so the collection
holds about a week of keys rather than every message ever queued.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from server import db as database
from server.clock import to_ms
from server.context import Context
from server.db import indexes
from server.feed import writing as feed_writing
from server.ids import new_id
from server.members import COLLECTION as MEMBERS
from server.notifications import grants, preferences, templates
from server.notifications.events import EVENTS

DELIVERIES = "notification_deliveries"
DEDUPE = "notification_dedupe"

#: Where a delivery stands with WeChat: what /me/notifications answers as `wechat`.
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
NO_GRANT, MUTED, OFF = "no_grant", "muted", "off"

indexes(
    DELIVERIES,
    IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]),  # /me/notifications
    IndexModel([("ref_id", ASCENDING), ("_id", ASCENDING)]),  # /notifications/deliveries?ref_id=
    IndexModel([("ref_id", ASCENDING), ("event", ASCENDING), ("_id", ASCENDING)]),  # ... &event=
    IndexModel([("wechat", ASCENDING), ("next_attempt_at", ASCENDING)]),  # the sender's queue, the backlog
)
indexes(DEDUPE, IndexModel([("at", ASCENDING)]))  # purge_dedupe
DEDUPE_KEPT = timedelta(days=7)  # well past the longest lead time (a day): see the module note

_WAKE = "notifications.wake"


def wake_event(ctx: Context) -> asyncio.Event:
    """Set when this process committed something to send; the sender waits on it."""
    event = ctx.state.get(_WAKE)
    if event is None:
        event = ctx.state[_WAKE] = asyncio.Event()
    return event


def dedupe_id(event: str, member_id: str, dedupe_key: str) -> str:
    return f"{event}|{member_id}|{dedupe_key}"


async def enqueue(ctx: Context, txn, *, event: str, member_ids: list[str], ref_kind: str, ref_id: str, org_id: str,
                  title: str, summary: str, values: dict, dedupe_key: str | None = None) -> int:
    """Queue `event` for the active members of `member_ids` in `txn`: notice + delivery each; how many were queued."""
    spec = EVENTS.get(event)
    if spec is None:
        raise ValueError(f"unknown notification event {event!r}")
    unknown = set(values) - set(spec.values)
    if unknown:
        raise ValueError(f"{event} offers no values {sorted(unknown)}")
    wanted = list(dict.fromkeys(member_ids))
    if not wanted:
        return 0
    active = {d["_id"] for d in await database.find_in(ctx.db[MEMBERS], "_id", wanted, {"active": 1}, txn=txn)
              if d.get("active")}
    recipients = [m for m in wanted if m in active]
    template = await templates.configured(ctx, event, txn=txn) if ctx.settings.wechat_appid else None
    if template is None and not spec.notice:
        return 0  # the ref's own feed item tells it, and WeChat is off for it: nothing to write
    if dedupe_key is not None and recipients:
        recipients = await _claim_dedupe(ctx, txn, event, recipients, dedupe_key)
    if not recipients:
        return 0
    if spec.notice:
        await feed_writing.notify(ctx, recipients, title=title, summary=summary, ref_kind=ref_kind, ref_id=ref_id,
                                  org_id=org_id, txn=txn)
    now = to_ms(ctx.now())
    muted = await preferences.muted_among(ctx, recipients, event, txn=txn) if template else set()
    granted = await grants.counts(ctx, recipients, template["template_id"], txn=txn) if template else {}
    snapshot = ({"template_id": template["template_id"], "page": templates.page_for(template, ref_id),
                 "fields": template["fields"]} if template else None)
    docs = []
    for member_id in recipients:
        status = (OFF if template is None else MUTED if member_id in muted
                  else PENDING if granted.get(member_id, 0) > 0 else NO_GRANT)
        docs.append({"_id": new_id(), "member_id": member_id, "event": event, "ref_kind": ref_kind, "ref_id": ref_id,
                     "org_id": org_id, "title": title, "summary": feed_writing.summarise(summary),
                     "values": values, "template": snapshot, "wechat": status, "attempts": 0, "last_error": None,
                     "next_attempt_at": now if status == PENDING else None, "created_at": now, "sent_at": None,
                     "dedupe_key": dedupe_key})
    await ctx.db[DELIVERIES].insert_many(docs, session=txn)
    if any(d["wechat"] == PENDING for d in docs):
        database.on_commit(txn, _waker(ctx))
    return len(recipients)


async def _claim_dedupe(ctx: Context, txn, event: str, recipients: list[str], dedupe_key: str) -> list[str]:
    keys = {m: dedupe_id(event, m, dedupe_key) for m in recipients}
    taken = {d["_id"] for d in await database.find_in(ctx.db[DEDUPE], "_id", list(keys.values()), {"_id": 1},
                                                      txn=txn)}
    fresh = [m for m in recipients if keys[m] not in taken]
    if fresh:
        now = to_ms(ctx.now())
        try:
            await ctx.db[DEDUPE].insert_many([{"_id": keys[m], "at": now} for m in fresh], session=txn)
        except DuplicateKeyError as exc:  # committed by another transaction since our snapshot: retry (note)
            exc._add_error_label("TransientTransactionError")
            raise
    return fresh


async def purge_dedupe(ctx: Context) -> int:
    """Delete the dedupe keys claimed more than DEDUPE_KEPT ago (module note); → how many."""
    done = await ctx.db[DEDUPE].delete_many({"at": {"$lt": to_ms(ctx.now() - DEDUPE_KEPT)}})
    return done.deleted_count


def _waker(ctx: Context):
    async def hook() -> None:
        wake_event(ctx).set()
    return hook

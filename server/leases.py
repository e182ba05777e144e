"""Named leases: work that one process at a time does (the notification sender, the token refresher,
the reminder scheduler), held in MongoDB and handed over when its holder dies.

A lease is one document `{_id: name, owner, until}` in `leases`. `acquire` is a single conditional
upsert: it writes `owner = me, until = now + seconds` only where the lease is already mine or has
lapsed (`until <= now`); where another process holds it, the filter matches nothing, the upsert tries
to insert a second document with the same `_id`, and the unique `_id` refuses it (DuplicateKeyError:
not acquired). Renewing is acquiring again before `until`.

Why at most one process holds it: a write to one document is atomic, so of two processes racing for
a lapsed lease one writes first and the other's filter (mine, or lapsed) no longer matches it. A
holder counts itself the holder only until the `until` it wrote, less MARGIN for the clock drift
between hosts, and renews well before (holders renew every `seconds / 3`); a holder that stops
(crash, SIGKILL, a network partition) stops renewing, its lease lapses at `until`, and the next
`acquire` anywhere takes it over. The owner id is made per process (host, pid and a random part)
inside the running process, never inherited over a fork. The holder is a process, not a coroutine:
`acquire` succeeds for every coroutine of the holding process, which coordinate among themselves.

What a lease does not give: work already started when the holder lost it may still finish after
another process took over. So a lease only keeps the work to one process most of the time (one
sender, one rate limit, one refresh); the guarantees that must hold always (a message sent at most
once, a token refreshed once) rest on conditional writes of their own (server/notifications/sender.py,
server/wechat/token.py).
"""

from __future__ import annotations

import os
import secrets
import socket
from datetime import UTC, datetime, timedelta

from pymongo.errors import DuplicateKeyError

from server.context import Context

COLLECTION = "leases"
# How much sooner than `until` a holder stops counting on its lease (clock drift between hosts).
MARGIN = timedelta(seconds=1)
_LAPSED = datetime(1970, 1, 1, tzinfo=UTC)


def owner_id(ctx: Context) -> str:
    """This process's owner id (made in the process, so a forked child never shares its parent's)."""
    key = ("leases.owner", os.getpid())
    owner = ctx.state.get(key)
    if owner is None:
        owner = ctx.state[key] = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
    return owner


async def acquire(ctx: Context, name: str, seconds: float) -> datetime | None:
    """Take or renew the lease `name` for `seconds`; the time until which it is ours, or None (another holds it)."""
    me, now = owner_id(ctx), ctx.now()
    until = now + timedelta(seconds=seconds)
    try:
        await ctx.db[COLLECTION].update_one(
            {"_id": name, "$or": [{"owner": me}, {"until": {"$lte": now}}]},
            {"$set": {"owner": me, "until": until, "renewed_at": now}}, upsert=True)
    except DuplicateKeyError:
        return None
    return until - MARGIN


async def release(ctx: Context, name: str) -> None:
    """Give the lease up at once (on shutdown), if it is still ours: the next process need not wait for it to lapse."""
    await ctx.db[COLLECTION].update_one({"_id": name, "owner": owner_id(ctx)}, {"$set": {"until": _LAPSED}})


class Lease:
    """A lease as one process sees it: `held()` says whether it may act now, `keep()` acquires or renews."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds = name, seconds
        self.until: datetime | None = None

    def held(self, ctx: Context) -> bool:
        return self.until is not None and ctx.now() < self.until

    async def keep(self, ctx: Context) -> bool:
        """Acquire or renew when a third of the lease has gone by; True while this process holds it."""
        if self.held(ctx) and self.until - ctx.now() > timedelta(seconds=self.seconds * 2 / 3):
            return True
        self.until = await acquire(ctx, self.name, self.seconds)
        return self.until is not None

    async def release(self, ctx: Context) -> None:
        if self.until is not None:
            self.until = None
            await release(ctx, self.name)

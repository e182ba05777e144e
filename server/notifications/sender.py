"""How deliveries reach WeChat: one sender across all processes, each message sent at most once.

Invariant: `subscribe/send` is called for a delivery only by the sender that moved it from `pending` to
`sending` (a conditional update, `claim`), and nothing ever moves a delivery back to `pending` unless
WeChat certainly did not take the message. So no message is sent twice, whatever crashes, takeovers
or races between two senders happen.

The argument. A claim is one atomic update whose filter is `wechat: pending`: of two senders (two
processes whose leases overlapped: a holder that was slow, not dead) one matches and the other's
filter no longer does. Between the claim and WeChat's answer the delivery stays `sending`; a sender
that dies there leaves it `sending`, and `sending` is never claimed again: a later sender finds it
(claimed more than INTERRUPTED_AFTER ago, and not being sent by this process) and records it `failed`
("interrupted"), since the message may or may not have gone out. What returns a delivery to `pending`
for another attempt: -1 or a 5xx after the retries of server/wechat/api.py, a connection that never
opened, no access token, 45009 (the quota: WeChat refused it). A timeout after the request was
written may have delivered it: `failed` ("uncertain"), never sent again.

Exactly once for what had not started: the delivery is on disk, `pending`, from the commit of its
change (server/notifications/outbox.py); the sender fetches the access token before it claims a
batch, so a sender that cannot reach WeChat claims nothing; a process killed after the commit and
before the claim leaves the delivery `pending` and the next holder of the lease sends it. Only a
kill inside the window from claim to answer (at most `wechat_send_concurrency` deliveries) loses a
message, and that is the price of at most once.

One sender: the lease `notification-sender` (server/leases.py). Only its holder sends, so the
per-minute cap (`wechat_send_per_minute`, counted in the holder) is the deployment's. The lease
lapses LEASE_SECONDS after its holder died and the next process's sender takes over. Grants
(server/notifications/grants.py) are spent when a delivery is claimed and given back when WeChat did
not take the message; 43101 sets them to 0 (`no_grant`); 47003 (bad data) and other errcodes are
`failed` at once. Every process's commits wake its own sender (`outbox.wake_event`); the holder also
looks for due deliveries every POLL_SECONDS, so one enqueued in another process waits at most that.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from datetime import timedelta

from pymongo.errors import InvalidOperation, PyMongoError

from server import leases, metrics
from server.context import Context
from server.db import find_in
from server.identity import IDENTITIES
from server.notifications import events, grants
from server.notifications.outbox import DELIVERIES, FAILED, NO_GRANT, PENDING, SENDING, SENT, wake_event
from server.wechat import api as wechat_api
from server.wechat import token as wechat_token
from server.wechat.transport import WechatError, WechatUnavailable

log = logging.getLogger("branchline.notifications")

LEASE = "notification-sender"
# A dead holder's deliveries wait at most this long for the next sender; renewed every third of it.
LEASE_SECONDS = 10.0
POLL_SECONDS = 1.0
BATCH = 200
# Attempts of one delivery (each with the retries of server/wechat/api.py inside), then `failed`.
MAX_ATTEMPTS = 5
RETRY_AFTER = (timedelta(seconds=10), timedelta(seconds=60), timedelta(minutes=5), timedelta(minutes=15))
# WeChat's 45009: the day's quota of the API is used up; stop sending for this long.
QUOTA_PAUSE = timedelta(minutes=10)
# A claim older than this, by another process, is one whose sender stopped mid-send: far beyond the
# longest call (3 attempts of wechat_timeout_seconds plus backoff, about 16 s at the default 5 s).
INTERRUPTED_AFTER = timedelta(minutes=2)
NO_GRANT_ON_WECHAT, BAD_DATA, QUOTA = 43101, 47003, 45009
# The backlog gauge counts the pending deliveries; at most this often (a count walks the index).
BACKLOG_SECONDS = 5.0

_STATE = "notifications.sender"


class _Sender:
    def __init__(self, ctx: Context) -> None:
        self.lease = leases.Lease(LEASE, LEASE_SECONDS)
        self.sent_at: collections.deque[float] = collections.deque()  # loop times of the last minute's sends
        self.paused_until = None
        self.inflight: set[str] = set()  # deliveries this process claimed and has not finished
        self.backlog_at = 0.0  # loop time the backlog gauge was last set
        self.task: asyncio.Task | None = None


def start(ctx: Context) -> None:
    """Start this process's sender (inside the running loop); nothing without BRANCHLINE_WECHAT_APPID."""
    if not ctx.settings.wechat_appid or _STATE in ctx.state:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    sender = ctx.state[_STATE] = _Sender(ctx)
    sender.task = loop.create_task(_run(ctx, sender))


async def _run(ctx: Context, sender: _Sender) -> None:
    wake = wake_event(ctx)
    try:
        while not ctx.stopping.is_set():
            try:
                wake.clear()
                if await sender.lease.keep(ctx):
                    if await _drain(ctx, sender):
                        continue  # there may be more due at once
                else:
                    metrics.OUTBOX_BACKLOG.set(0)
            except InvalidOperation:  # the client was closed: this application is gone
                return
            except (WechatUnavailable, WechatError) as exc:  # no access token: nothing was claimed
                log.warning("notification sender: %s", exc)
                await ctx.idle(RETRY_AFTER[0].total_seconds(), wake)
                continue
            except PyMongoError as exc:
                log.warning("notification sender: %s", exc)
            except Exception:  # the sender must outlive a bug in one round
                log.exception("notification sender failed; going on")
            await ctx.idle(POLL_SECONDS, wake)
    finally:
        try:
            await sender.lease.release(ctx)
        except (InvalidOperation, PyMongoError):
            pass


async def _drain(ctx: Context, sender: _Sender) -> int:
    """Send one batch of due deliveries, holding the lease; how many were attempted."""
    coll = ctx.db[DELIVERIES]
    now = ctx.now()
    await _close_interrupted(ctx, sender)
    loop = asyncio.get_running_loop()
    if loop.time() - sender.backlog_at >= BACKLOG_SECONDS:
        sender.backlog_at = loop.time()
        metrics.OUTBOX_BACKLOG.set(await coll.count_documents({"wechat": PENDING}))
    if sender.paused_until is not None:
        if now < sender.paused_until:
            return 0
        sender.paused_until = None
    due = await coll.find({"wechat": PENDING, "next_attempt_at": {"$lte": now}}).sort(
        "next_attempt_at", 1).limit(BATCH).to_list()
    if not due:
        return 0
    # who each is on WeChat, read once for the batch (a delivery's member and template never change)
    openids = {d["member_id"]: d["_id"] for d in await find_in(
        ctx.db[IDENTITIES], "member_id", list({d["member_id"] for d in due}), {"member_id": 1})}
    await wechat_token.access_token(ctx)  # before any claim: without a token nothing is claimed (note)
    slots = asyncio.Semaphore(max(1, ctx.settings.wechat_send_concurrency))
    running: set[asyncio.Task] = set()

    async def one(doc: dict) -> None:
        delivery_id = doc["_id"]
        try:
            await _deliver(ctx, sender, doc, openids.get(doc["member_id"]))
        except PyMongoError as exc:
            log.warning("notification delivery %s: %s", delivery_id, exc)
        except Exception:
            log.exception("notification delivery %s failed", delivery_id)
        finally:
            sender.inflight.discard(delivery_id)
            slots.release()

    attempted = 0
    for doc in due:
        await slots.acquire()
        if sender.paused_until is not None or not await sender.lease.keep(ctx):
            slots.release()
            break
        await _within_rate(ctx, sender)
        running.add(asyncio.ensure_future(one(doc)))
        attempted += 1
    if running:
        await asyncio.gather(*running)
    return attempted


async def _within_rate(ctx: Context, sender: _Sender) -> None:
    """Wait until one more send keeps any minute within wechat_send_per_minute (real time, not ctx.now).

    Counted over 60 s plus the call's timeout, from when each call starts: WeChat counts when a request
    reaches it, at most a timeout later, so no 60 s of its clock can hold more than the cap (a plain
    60 s window let 1,208 through in one minute at a cap of 1,200: bench/bench_notifications.py)."""
    loop = asyncio.get_running_loop()
    cap = max(1, ctx.settings.wechat_send_per_minute)
    window = 60 + ctx.settings.wechat_timeout_seconds
    while True:
        now = loop.time()
        while sender.sent_at and sender.sent_at[0] <= now - window:
            sender.sent_at.popleft()
        if len(sender.sent_at) < cap:
            sender.sent_at.append(now)
            return
        await asyncio.sleep(sender.sent_at[0] + window - now)


async def _deliver(ctx: Context, sender: _Sender, doc: dict, openid: str | None) -> None:
    """Claim `doc` (as read before: the claim's filter checks it is still pending), then send it once."""
    coll = ctx.db[DELIVERIES]
    delivery_id = doc["_id"]
    me, now = leases.owner_id(ctx), ctx.now()
    claim = await coll.update_one({"_id": delivery_id, "wechat": PENDING, "next_attempt_at": {"$lte": now}},
                                  {"$set": {"wechat": SENDING, "claimed_by": me, "claimed_at": now},
                                   "$inc": {"attempts": 1}})
    if claim.modified_count != 1:
        return  # another sender took it
    sender.inflight.add(delivery_id)
    attempts = doc["attempts"] + 1
    event, template, member_id = doc["event"], doc["template"], doc["member_id"]

    async def finish(status: str, error: str | None = None, *, retry_at=None, counted: bool = True) -> None:
        update: dict = {"$set": {"wechat": status, "last_error": error, "next_attempt_at": retry_at}}
        if status == SENT:
            update["$set"]["sent_at"] = ctx.now()
        if not counted:  # WeChat refused it for its quota, not for the message: not an attempt
            update["$inc"] = {"attempts": -1}
        await coll.update_one({"_id": delivery_id, "wechat": SENDING, "claimed_by": me}, update)

    if openid is None:
        await finish(NO_GRANT, "the member has not signed in with WeChat")
        return
    if not await grants.spend(ctx, member_id, template["template_id"]):
        await finish(NO_GRANT, "no grant left for this template")
        return
    data = events.render(template["fields"], doc["values"], ctx.settings.tz)
    try:
        await wechat_api.subscribe_send(ctx, openid, template["template_id"], template["page"], data,
                                        on_retry=lambda _reason: metrics.MESSAGES_RETRIED.labels(event).inc())
    except WechatError as exc:
        if exc.errcode == NO_GRANT_ON_WECHAT:
            await grants.zero(ctx, member_id, template["template_id"])
            await finish(NO_GRANT, "43101: the member has no grant for this template on WeChat")
            return
        await grants.give_back(ctx, member_id, template["template_id"])
        if exc.errcode == QUOTA:
            sender.paused_until = ctx.now() + QUOTA_PAUSE
            log.warning("WeChat's quota is used up (45009): sending paused for %s", QUOTA_PAUSE)
            await finish(PENDING, "45009: WeChat's quota is used up", retry_at=sender.paused_until, counted=False)
            return
        metrics.MESSAGES_FAILED.labels(event, "rejected").inc()
        await finish(FAILED, f"{exc.errcode}: refused by WeChat" + (" (bad data)" if exc.errcode == BAD_DATA else ""))
        return
    except WechatUnavailable as exc:
        if exc.maybe_delivered:
            metrics.MESSAGES_FAILED.labels(event, "uncertain").inc()
            await finish(FAILED, f"{exc.reason}: may have been delivered, not sent again")
            return
        await grants.give_back(ctx, member_id, template["template_id"])
        if attempts >= MAX_ATTEMPTS:
            metrics.MESSAGES_FAILED.labels(event, "unavailable").inc()
            await finish(FAILED, f"{exc.reason}: WeChat unavailable after {MAX_ATTEMPTS} attempts")
            return
        metrics.MESSAGES_RETRIED.labels(event).inc()
        retry_at = ctx.now() + RETRY_AFTER[min(attempts, len(RETRY_AFTER)) - 1]
        await finish(PENDING, f"{exc.reason}: WeChat unavailable, will try again", retry_at=retry_at)
        return
    metrics.MESSAGES_SENT.labels(event).inc()
    await finish(SENT)


async def _close_interrupted(ctx: Context, sender: _Sender) -> None:
    """Deliveries claimed long ago and never finished: their sender stopped mid-send (another process
    that died, or a round of this one that failed half-way); not those this process is sending now."""
    coll = ctx.db[DELIVERIES]
    cutoff = ctx.now() - INTERRUPTED_AFTER
    stale = [d for d in await coll.find({"wechat": SENDING, "claimed_at": {"$lt": cutoff}},
                                        {"claimed_by": 1, "event": 1}).limit(BATCH).to_list()
             if d["_id"] not in sender.inflight]
    for d in stale:
        done = await coll.update_one(
            {"_id": d["_id"], "wechat": SENDING, "claimed_by": d.get("claimed_by")},
            {"$set": {"wechat": FAILED, "last_error": "interrupted: its sender stopped mid-send; "
                                                      "it may have been delivered, not sent again"}})
        if done.modified_count:
            metrics.MESSAGES_FAILED.labels(d["event"], "interrupted").inc()

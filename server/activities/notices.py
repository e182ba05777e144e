"""What members are told: the activity's item in the feed of its org subtree, and the notifications
(API.md §9, server/notifications/outbox.py) to the members promoted from the waitlist
(`waitlist_promoted`), signed up for an activity that is cancelled (`activity_cancelled`: confirmed and
waitlisted) or moved to another time or place (`activity_changed`: confirmed).

Each is written in the caller's transaction, so it exists if and only if the change it tells of does.
"""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from server import orgs
from server.activities.rules import cancelled
from server.context import Context
from server.feed import writing as feed_writing
from server.notifications import outbox

FEED_KIND = "activity"
# The fields the feed item shows: an edit of a published activity that touches one republishes it.
FEED_FIELDS = {"title", "description", "location", "starts_at", "ends_at"}
# A change of one of these tells the confirmed members (`activity_changed`).
MOVE_FIELDS = ("starts_at", "ends_at", "location")


def feed_summary(ctx: Context, act: dict) -> str:
    when = act["starts_at"].astimezone(ctx.settings.tz).strftime("%Y-%m-%d %H:%M")
    if cancelled(act):
        reason = act.get("cancel_reason")
        return f"已取消（原定 {when}）" + (f"。原因：{reason}" if reason else "")
    parts = [when, act.get("location") or "", act.get("description") or ""]
    return " · ".join(p for p in parts if p)


async def publish_feed(ctx: Context, act: dict, txn: AsyncClientSession) -> None:
    """The activity's feed item for its org subtree, as the activity now is (cancelled: marked, expiring at the end)."""
    is_cancelled = cancelled(act)
    await feed_writing.publish_item(
        ctx, kind=FEED_KIND, ref_id=act["_id"], org_id=act["org_id"],
        title=f"【已取消】{act['title']}" if is_cancelled else act["title"], summary=feed_summary(ctx, act),
        published_at=act["published_at"], expires_at=act["ends_at"] if is_cancelled else None, txn=txn)


async def tell_promoted(ctx: Context, txn: AsyncClientSession, act: dict, promoted: list[str]) -> None:
    await tell(ctx, txn, act, "waitlist_promoted", promoted, title=f"候补转正：{act['title']}",
                  summary="有名额空出，您已从候补转为正式报名。", result="候补转正")


async def tell_cancelled(ctx: Context, txn: AsyncClientSession, act: dict, signed_up: list[str]) -> None:
    reason = act.get("cancel_reason") or ""
    await tell(ctx, txn, act, "activity_cancelled", signed_up, title=f"活动取消：{act['title']}",
                  summary="您报名的活动已取消。" + (f"原因：{reason}" if reason else ""), reason=reason)


async def tell_moved(ctx: Context, txn: AsyncClientSession, before: dict, act: dict, confirmed: list[str]) -> None:
    """Tell the confirmed members when a published activity's time or place changed."""
    moved = [k for k in MOVE_FIELDS if before.get(k) != act.get(k)]
    if not moved:
        return
    note = "时间和地点变更" if "location" in moved and len(moved) > 1 else "地点变更" if moved == ["location"] \
        else "时间变更"
    await tell(ctx, txn, act, "activity_changed", confirmed, title=f"活动{note}：{act['title']}",
                  summary=f"{note}：{feed_summary(ctx, act)}", note=note)


async def tell(ctx: Context, txn: AsyncClientSession, act: dict, event: str, member_ids: list[str], *,
               title: str, summary: str, dedupe_key: str | None = None, **values) -> int:
    """Notify `member_ids` of `event` about `act` in `txn` (the outbox; a reminder passes its dedupe key);
    → how many were queued."""
    if not member_ids:
        return 0
    return await outbox.enqueue(
        ctx, txn, event=event, member_ids=member_ids, ref_kind="activity", ref_id=act["_id"], org_id=act["org_id"],
        title=title, summary=summary, dedupe_key=dedupe_key,
        values={"title": act["title"], "time": act["starts_at"], "place": act.get("location"),
                "org": await orgs.name(ctx, act["org_id"], txn=txn), **values})

"""What members are told: the activity's item in the feed of its org subtree, and notices to the
members promoted from the waitlist or signed up for an activity that is cancelled.

Each is written in the caller's transaction, so it exists if and only if the change it tells of does.
"""

from __future__ import annotations

from pymongo.asynchronous.client_session import AsyncClientSession

from server.activities.rules import cancelled
from server.context import Context
from server.feed import writing as feed_writing

FEED_KIND = "activity"
# The fields the feed item shows: an edit of a published activity that touches one republishes it.
FEED_FIELDS = {"title", "description", "location", "starts_at", "ends_at"}


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
    if promoted:
        await _notify(ctx, promoted, title=f"候补转正：{act['title']}",
                      summary="有名额空出，您已从候补转为正式报名。", act=act, txn=txn)


async def tell_cancelled(ctx: Context, txn: AsyncClientSession, act: dict, signed_up: list[str]) -> None:
    if signed_up:
        reason = act.get("cancel_reason") or ""
        await _notify(ctx, signed_up, title=f"活动取消：{act['title']}",
                      summary="您报名的活动已取消。" + (f"原因：{reason}" if reason else ""), act=act,
                      txn=txn)


async def _notify(ctx: Context, member_ids: list[str], *, title: str, summary: str, act: dict,
                  txn: AsyncClientSession) -> None:
    await feed_writing.notify(ctx, member_ids, title=title, summary=summary, ref_kind="activity", ref_id=act["_id"],
                              org_id=act["org_id"], txn=txn)

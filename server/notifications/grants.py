"""How many messages of each template a member has allowed (WeChat's grants are one-time, API.md §9).

`notification_grants` holds `{_id: "member_id:template_id", member_id, template_id, grants}`. Each
"accept" the app reports from wx.requestSubscribeMessage adds one, up to GRANT_CAP; the sender spends
one per message just before sending it (a conditional decrement: never below 0, never one grant for
two messages) and gives it back when WeChat did not take the message; WeChat's 43101 (the member has
no grant on its side) sets the count to 0.

Answers for template ids that no enabled event uses are ignored, not refused: the app may hold an
older list of templates, and refusing the request would lose the accepts for the current ones.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from server.context import Context
from server.db import find_in
from server.notifications import templates
from server.scope import Principal

COLLECTION = "notification_grants"
# WeChat keeps accepted grants without a documented ceiling; we stop counting here so a client
# that reports "accept" in a loop cannot make one member a sink of unbounded sends.
GRANT_CAP = 50


def grant_id(member_id: str, template_id: str) -> str:
    return f"{member_id}:{template_id}"


async def record(ctx: Context, principal: Principal, results: dict[str, str]) -> list[dict]:
    """Count what wx.requestSubscribeMessage answered; the member's grants afterwards."""
    used = await templates.enabled_by_template(ctx)
    for template_id, answer in results.items():
        if answer != "accept" or template_id not in used:
            continue
        try:
            await ctx.db[COLLECTION].update_one(
                {"_id": grant_id(principal.member_id, template_id), "grants": {"$lt": GRANT_CAP}},
                {"$inc": {"grants": 1}, "$set": {"updated_at": ctx.now()},
                 "$setOnInsert": {"member_id": principal.member_id, "template_id": template_id}}, upsert=True)
        except DuplicateKeyError:
            pass  # at the cap: the filter missed the document and the upsert met its _id
    return await summary(ctx, principal.member_id, used)


async def summary(ctx: Context, member_id: str, used: dict[str, list[str]] | None = None) -> list[dict]:
    """`[{event, template_id, grants}]` for every enabled event."""
    used = used if used is not None else await templates.enabled_by_template(ctx)
    ids = [grant_id(member_id, t) for t in used]
    counts = {d["template_id"]: d["grants"] for d in
              await ctx.db[COLLECTION].find({"_id": {"$in": ids}}).to_list()}
    return sorted(({"event": event, "template_id": t, "grants": counts.get(t, 0)}
                   for t, events in used.items() for event in events), key=lambda i: i["event"])


async def counts(ctx: Context, member_ids: list[str], template_id: str, *, txn=None) -> dict[str, int]:
    docs = await find_in(ctx.db[COLLECTION], "_id", [grant_id(m, template_id) for m in member_ids],
                         {"member_id": 1, "grants": 1}, txn=txn)
    return {d["member_id"]: d["grants"] for d in docs}


async def spend(ctx: Context, member_id: str, template_id: str) -> bool:
    """Take one grant for a message about to be sent; False when there is none."""
    result = await ctx.db[COLLECTION].update_one({"_id": grant_id(member_id, template_id), "grants": {"$gt": 0}},
                                                 {"$inc": {"grants": -1}})
    return result.modified_count == 1


async def give_back(ctx: Context, member_id: str, template_id: str) -> None:
    """WeChat did not take the message: the grant it was to use is the member's again."""
    await ctx.db[COLLECTION].update_one({"_id": grant_id(member_id, template_id), "grants": {"$lt": GRANT_CAP}},
                                        {"$inc": {"grants": 1}})


async def zero(ctx: Context, member_id: str, template_id: str) -> None:
    """WeChat answered 43101: the member has no grant for this template on its side."""
    await ctx.db[COLLECTION].update_one({"_id": grant_id(member_id, template_id)}, {"$set": {"grants": 0}})

"""Feedback after an activity: members who checked in rate it once; organisers read the ratings and
comments (without names: feedback is given freely)."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import DuplicateKeyError

from server import content_check, signups
from server.activities import rules
from server.activities.checkin import close_out
from server.activities.store import FEEDBACK
from server.activities.visibility import get_managed, get_visible
from server.clock import to_ms
from server.context import Context
from server.db import transaction
from server.errors import conflict
from server.ids import new_id
from server.scope import Principal


async def give_feedback(ctx: Context, principal: Principal, activity_id: str, rating: int, comment: str) -> dict:
    act = await get_visible(ctx, principal, activity_id)
    await close_out(ctx, act)
    signup = await ctx.db[signups.COLLECTION].find_one({"activity_id": activity_id,
                                                        "member_id": principal.member_id})
    rules.require_attended(signup)
    if signup.get("feedback_given"):
        raise conflict("feedback_exists", "You have already left feedback for this activity.")
    flag = await content_check.check(ctx, principal, comment, "comment")
    doc = {"_id": new_id(), "activity_id": activity_id, "member_id": principal.member_id, "rating": rating,
           "comment": comment, "content_flag": flag, "created_at": to_ms(ctx.now())}

    async def work(txn: AsyncClientSession) -> None:  # the feedback and the flag, both or neither
        await ctx.db[FEEDBACK].insert_one(doc, session=txn)
        await ctx.db[signups.COLLECTION].update_one({"_id": signup["_id"]}, {"$set": {"feedback_given": True}},
                                                    session=txn)

    try:
        await transaction(ctx, work)
    except DuplicateKeyError:
        raise conflict("feedback_exists", "You have already left feedback for this activity.") from None
    return feedback_out(doc)


def feedback_out(doc: dict) -> dict:
    return {"id": doc["_id"], "activity_id": doc["activity_id"], "rating": doc["rating"],
            "comment": doc["comment"], "content_flag": doc.get("content_flag"), "created_at": doc["created_at"]}


async def feedback_summary(ctx: Context, principal: Principal, activity_id: str) -> dict:
    """For organisers: the ratings and comments."""
    await get_managed(ctx, principal, activity_id)
    docs = await ctx.db[FEEDBACK].find({"activity_id": activity_id}).sort("created_at", ASCENDING).to_list()
    ratings = {str(r): 0 for r in range(1, 6)}
    for doc in docs:
        ratings[str(doc["rating"])] += 1
    average = round(sum(d["rating"] for d in docs) / len(docs), 2) if docs else None
    return {"activity_id": activity_id, "count": len(docs), "average": average, "ratings": ratings,
            "comments": [feedback_out(d) for d in docs if d["comment"]]}

"""A member signing up for an activity, and leaving it.

Both run in the activity's transaction (server/signups.py) and decide on the activity as that
transaction reads it, so a rule checked is a rule that holds when the place is given or freed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from server import members, signups
from server.activities import notices, rules
from server.activities.store import COLLECTION
from server.activities.visibility import get_visible, not_found, sees
from server.context import Context
from server.errors import ApiError
from server.scope import Principal


@dataclass
class _SignUp:
    principal: Principal
    answers: dict[str, str]


async def sign_up(ctx: Context, principal: Principal, activity_id: str, answers: dict[str, str]
                  ) -> tuple[dict, bool]:
    """→ ({status, position?}, created?). Signing up again answers the sign-up you have.

    Decided in the transaction that takes this sign-up with the others waiting for the activity (group
    commit, `signups.join`), by `_sign_up_batch`.
    """
    signup, created, position = await signups.join(
        ctx, activity_id, _SignUp(principal, answers),
        lambda txn, requests: _sign_up_batch(ctx, txn, activity_id, requests))
    out: dict[str, Any] = {"status": signup["status"]}
    if position is not None:
        out["position"] = position
    return out, created


async def _sign_up_batch(ctx: Context, txn: AsyncClientSession, activity_id: str, requests: list[_SignUp]
                         ) -> list[tuple[dict, bool, int | None] | ApiError]:
    """One transaction for a batch of sign-ups: each request's answer or refusal, in order.

    The members' records (for eligibility) are read with one query for the whole batch.
    """
    member_ids = [r.principal.member_id for r in requests]
    batch = await signups.Batch.read(ctx, txn, activity_id, member_ids)
    records = {d["_id"]: d for d in await ctx.db[members.COLLECTION].find(
        {"_id": {"$in": list(set(member_ids))}}, session=txn).to_list()}
    results: list[tuple[dict, bool, int | None] | ApiError] = []
    for request in requests:
        try:
            results.append(await _sign_up_one(ctx, batch, request, records.get(request.principal.member_id) or {}))
        except ApiError as refusal:
            results.append(refusal)
    await batch.write()
    return results


async def _sign_up_one(ctx: Context, batch: signups.Batch, request: _SignUp, member: dict
                       ) -> tuple[dict, bool, int | None]:
    """The rules of one sign-up, in order, on the activity as the batch's transaction read it."""
    act = batch.activity
    if act is None or not sees(request.principal, act):
        raise not_found()
    rules.require_not_cancelled(act)
    mine = await batch.active(request.principal.member_id)
    if mine is not None:
        signup, position = mine
        return signup, False, position
    rules.require_published(act)
    await rules.require_eligible(ctx, act, member)
    rules.require_open(act, ctx.now())
    signup, position = batch.place(request.principal.member_id, request.answers)
    return signup, True, position


async def leave(ctx: Context, principal: Principal, activity_id: str) -> None:
    """Cancel the caller's sign-up; a confirmed place freed goes to the earliest waitlisted member at once.

    A sign-up already cancelled stays as it is (DELETE is idempotent: a client retrying after a lost
    answer gets 204 again); none at all is 404 signup_not_found.
    """
    await get_visible(ctx, principal, activity_id)

    async def work(txn: AsyncClientSession) -> None:
        # (Filter on the unique pair only: SecantusDB plans `status: {$in}` beside it as a scan.)
        signup = await ctx.db[signups.COLLECTION].find_one(
            {"activity_id": activity_id, "member_id": principal.member_id}, session=txn)
        if signup is None:
            raise ApiError(404, "signup_not_found", "You have not signed up for this activity.")
        if signup["status"] not in signups.ACTIVE:  # already cancelled: a retried DELETE answers 204 again
            return
        act = await ctx.db[COLLECTION].find_one({"_id": activity_id}, session=txn)
        now = signups.now_ms(ctx)
        rules.require_not_cancelled(act)
        rules.require_may_leave(act, signup, now)
        promoted = await signups.release(ctx, txn, act, signup, now)
        await notices.tell_promoted(ctx, txn, act, promoted)

    await signups.in_transaction(ctx, activity_id, work)

"""The rules the activity operations check, one named predicate each, written once.

A `require_*` raises the refusal (ApiError) when its rule does not hold; the operations call them in
the order the API documents, on the activity as they read it (inside the sign-up transaction for the
operations that change places).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from server import programmes
from server.context import Context
from server.errors import ApiError, conflict

CHECKIN_OPENS_BEFORE = timedelta(minutes=30)


def cancelled(act: dict) -> bool:
    return act["status"] == "cancelled"


def require_not_cancelled(act: dict) -> None:
    if cancelled(act):
        raise conflict("activity_cancelled", "This activity has been cancelled.")


def require_times_in_order(act: dict) -> None:
    """signup_opens_at < signup_closes_at ≤ starts_at < ends_at; cancel_deadline ≤ starts_at."""
    errors = []
    if not act["signup_opens_at"] < act["signup_closes_at"]:
        errors.append(("signup_closes_at", "must be after signup_opens_at"))
    if not act["signup_closes_at"] <= act["starts_at"]:
        errors.append(("signup_closes_at", "must not be after starts_at"))
    if not act["starts_at"] < act["ends_at"]:
        errors.append(("ends_at", "must be after starts_at"))
    if act.get("cancel_deadline") is not None and not act["cancel_deadline"] <= act["starts_at"]:
        errors.append(("cancel_deadline", "must not be after starts_at"))
    if errors:
        raise ApiError(422, "invalid_request", "The activity's times are out of order.",
                       errors=[{"field": f, "message": m} for f, m in errors])


# -- signing up and leaving -----------------------------------------------------------------------

def require_published(act: dict) -> None:
    """A draft is refused before eligibility is looked at, with its own words (only its organisers see it)."""
    if act["status"] == "draft":
        raise conflict("signup_not_open", "This activity is not published yet.")


async def require_eligible(ctx: Context, act: dict, member: dict) -> None:
    """The member's record meets the rules of the activity's programme (server/programmes.py)."""
    programme = await programmes.get_cached(ctx, act["programme"])
    ok, reason = programmes.eligible(programme, member, act["starts_at"], ctx.settings.tz)
    if not ok:
        raise ApiError(403, "not_eligible", reason)


def require_open(act: dict, now: datetime) -> None:
    """Sign-up is open: the activity is published and `now` is in [signup_opens_at, signup_closes_at)."""
    if act["status"] != "published" or now < act["signup_opens_at"]:
        raise conflict("signup_not_open", "Sign-up for this activity has not opened yet.")
    if now >= act["signup_closes_at"]:
        raise conflict("signup_closed", "Sign-up for this activity has closed.")


def cancel_deadline(act: dict) -> datetime:
    """Until when a confirmed member may leave: the activity's `cancel_deadline`, else its start."""
    return act.get("cancel_deadline") or act["starts_at"]


def require_may_leave(act: dict, signup: dict, now: datetime) -> None:
    """A confirmed place may be given up until the cancel deadline, a waitlisted one at any time; neither
    once checked in (attendance is evidence: it is not withdrawn by leaving)."""
    if signup["status"] == "confirmed" and now > cancel_deadline(act):
        raise conflict("cancel_deadline_passed", "The deadline for cancelling has passed.")
    if signup.get("checked_in_at"):
        raise conflict("cancel_deadline_passed", "You have checked in; the sign-up can no longer be cancelled.")


# -- on the day -----------------------------------------------------------------------------------

def not_confirmed() -> ApiError:
    return ApiError(403, "not_confirmed", "Only members with a confirmed place can check in.")


def require_confirmed(signup: dict | None) -> None:
    if signup is None or signup["status"] != "confirmed":
        raise not_confirmed()


def require_checkin_open(act: dict, now: datetime) -> None:
    """Check-in is open from CHECKIN_OPENS_BEFORE the start until the end."""
    if now < act["starts_at"] - CHECKIN_OPENS_BEFORE:
        raise conflict("checkin_not_open", "Check-in opens 30 minutes before the start.")
    if now > act["ends_at"]:
        raise conflict("checkin_closed", "Check-in closed when the activity ended.")


def require_attended(signup: dict | None) -> None:
    if signup is None or not signup.get("checked_in_at"):
        raise ApiError(403, "not_attended", "Only members who checked in may leave feedback.")

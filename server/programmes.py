"""群心驿站 programmes and their eligibility rules (API.md §6).

A programme is data: `{_id: key, name, description, rules, active}`. Rules are checked on the server
against the member's record; every condition present must hold:

- `tags_any`: the member has at least one of these tags; `tags_all`: every one of them;
- `gender`; `party_status`: one of the listed statuses;
- `min_age` / `max_age`: whole years of age on the activity's start day, the day being taken in the
  organisation's time zone (`ctx.settings.tz`). "Age ≤ 35" holds until the day before the 36th birthday.

The five defaults are written on first read ($setOnInsert, so an admin's edits are never overwritten)
and work with no admin action. Programmes are shared by the whole tree, so editing one needs the admin
role on a root organisation.
"""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time
from typing import Any

from server import orgs
from server.context import Context
from server.errors import ApiError, invalid
from server.pagination import page
from server.scope import Principal

COLLECTION = "programmes"

_NO_RULES: dict[str, Any] = {"tags_any": [], "tags_all": [], "gender": None, "min_age": None, "max_age": None,
                             "party_status": []}

DEFAULTS: list[dict[str, Any]] = [
    {"_id": "unity", "name": "团结之家", "description": "", "rules": dict(_NO_RULES), "active": True},
    {"_id": "workers", "name": "职工之家", "description": "",
     "rules": {**_NO_RULES, "tags_any": ["union_member"]}, "active": True},
    {"_id": "youth", "name": "青年之家", "description": "", "rules": {**_NO_RULES, "max_age": 35}, "active": True},
    {"_id": "women", "name": "妇女之家", "description": "", "rules": {**_NO_RULES, "gender": "female"},
     "active": True},
    {"_id": "culture", "name": "文体活动", "description": "", "rules": dict(_NO_RULES), "active": True},
]


def programme_out(doc: dict) -> dict:
    return {"key": doc["_id"], "name": doc["name"], "description": doc.get("description", ""),
            "rules": {**_NO_RULES, **doc.get("rules", {})}, "active": doc.get("active", True)}


async def ensure_defaults(ctx: Context) -> None:
    """Write the built-in programmes once per database (idempotent; never overwrites an edit)."""
    if ctx.state.get("programmes_seeded"):
        return
    for default in DEFAULTS:
        await ctx.db[COLLECTION].update_one(
            {"_id": default["_id"]},
            {"$setOnInsert": {k: v for k, v in default.items() if k != "_id"}},
            upsert=True)
    ctx.state["programmes_seeded"] = True


async def get(ctx: Context, key: str) -> dict | None:
    doc = await ctx.db[COLLECTION].find_one({"_id": key})
    if doc is None:
        for default in DEFAULTS:  # a database nobody has read programmes from yet
            if default["_id"] == key:
                await ensure_defaults(ctx)
                return await ctx.db[COLLECTION].find_one({"_id": key})
    return doc


# Sign-ups read a programme's rules on every request; a few seconds of caching saves that query. An edit
# in this process is seen at once; other processes see it within PROGRAMME_TTL seconds.
PROGRAMME_TTL = 5.0


async def get_cached(ctx: Context, key: str) -> dict:
    cache: dict = ctx.state.setdefault("programmes", {})
    hit = cache.get(key)
    now = clock.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    doc = await get(ctx, key)
    if doc is None:  # activities only name programmes that exist, and programmes are never deleted
        raise ApiError(403, "not_eligible", "This activity's programme no longer exists.")
    cache[key] = (now + PROGRAMME_TTL, doc)
    return doc


async def require_active(ctx: Context, key: str) -> dict:
    doc = await get(ctx, key)
    if doc is None or not doc.get("active", True):
        raise invalid("programme", f"Unknown or inactive programme {key!r}.")
    return doc


async def list_all(ctx: Context, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    await ensure_defaults(ctx)
    return await page(ctx.db[COLLECTION], {}, limit, cursor)


async def put(ctx: Context, principal: Principal, key: str, body: dict) -> dict:
    await orgs.require_root_admin(ctx, principal, "programmes")
    await ensure_defaults(ctx)
    rules = {**_NO_RULES, **body.get("rules", {})}
    if rules["min_age"] is not None and rules["max_age"] is not None and rules["min_age"] > rules["max_age"]:
        raise invalid("rules.min_age", "min_age must not exceed max_age.")
    doc = {"name": body["name"], "description": body.get("description", ""), "rules": rules,
           "active": body.get("active", True), "updated_at": ctx.now(), "updated_by": principal.member_id}
    await ctx.db[COLLECTION].update_one({"_id": key}, {"$set": doc}, upsert=True)
    ctx.state.get("programmes", {}).pop(key, None)
    return {"_id": key, **doc}


# -- eligibility ----------------------------------------------------------------------------------

def _birthday(born: date, years: int) -> date:
    """The day `born` turns `years` old (29 February birthdays fall on 1 March in common years)."""
    try:
        return born.replace(year=born.year + years)
    except ValueError:
        return date(born.year + years, 3, 1)


def age_on(born: date, day: date) -> int:
    years = day.year - born.year
    return years - 1 if day < _birthday(born, years) else years


def local_day(moment: datetime, tz) -> date:
    return moment.astimezone(tz).date()


def eligible(programme: dict, member: dict, starts_at: datetime, tz) -> tuple[bool, str]:
    """(True, "") or (False, reason) for this member and an activity starting at `starts_at`."""
    rules = {**_NO_RULES, **programme.get("rules", {})}
    tags = set(member.get("tags") or [])
    if rules["tags_any"] and not tags & set(rules["tags_any"]):
        return False, "This programme is for members tagged " + " or ".join(rules["tags_any"]) + "."
    if rules["tags_all"] and not set(rules["tags_all"]) <= tags:
        return False, "This programme is for members tagged " + " and ".join(rules["tags_all"]) + "."
    if rules["gender"] and member.get("gender") != rules["gender"]:
        return False, f"This programme is for {rules['gender']} members."
    if rules["party_status"] and member.get("party_status") not in rules["party_status"]:
        return False, "This programme is not open to your party status."
    if rules["min_age"] is not None or rules["max_age"] is not None:
        age = age_on(date.fromisoformat(member["birth_date"]), local_day(starts_at, tz))
        if rules["max_age"] is not None and age > rules["max_age"]:
            return False, f"This programme is for members aged {rules['max_age']} or under on the day."
        if rules["min_age"] is not None and age < rules["min_age"]:
            return False, f"This programme is for members aged {rules['min_age']} or over on the day."
    return True, ""


def eligible_filter(programmes: list[dict], member: dict, tz) -> dict:
    """A Mongo filter on activities matching `eligible(...)` for this member, so eligible lists page.

    Non-age rules depend on the member only; age rules become a range of `starts_at`: age ≤ max on the
    local start day ⇔ starts_at < local midnight of the (max+1)th birthday; age ≥ min ⇔ starts_at ≥ local
    midnight of the min-th birthday.
    """
    born = date.fromisoformat(member["birth_date"])
    clauses: list[dict] = []
    for programme in programmes:
        rules = {**_NO_RULES, **programme.get("rules", {})}
        probe = {**rules, "min_age": None, "max_age": None}
        ok, _ = eligible({"rules": probe}, member, datetime.now(UTC), tz)
        if not ok:
            continue
        clause: dict[str, Any] = {"programme": programme["_id"]}
        starts: dict[str, datetime] = {}
        if rules["max_age"] is not None:
            starts["$lt"] = _local_midnight(_birthday(born, rules["max_age"] + 1), tz)
        if rules["min_age"] is not None:
            starts["$gte"] = _local_midnight(_birthday(born, rules["min_age"]), tz)
        if starts:
            clause["starts_at"] = starts
        clauses.append(clause)
    return {"$or": clauses} if clauses else {"_id": {"$exists": False}}


def _local_midnight(day: date, tz) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)

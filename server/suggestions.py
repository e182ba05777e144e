"""意见建议 (API.md §11): members write suggestions about the app or the work; organisers of the author's
org subtree list and answer them; the author gets the answer as a notice in their feed.

Anonymity. A suggestion document holds what organisers see: the text, its category, the author's org
(its `org_path`, which decides who may read and answer it) and, for a named one, `author_id`. An anonymous
one holds no trace of its author. Who wrote a suggestion is kept apart, in `suggestion_authors`
(`_id` = suggestion id, `member_id`), for every suggestion: it is what delivers the answer notice and what
lists a member's own suggestions (GET /suggestions for themselves, GET /me/export). Only `_author_of`
and `_own_ids` read it; no organiser path does, the audit entry of a reply names the suggestion and not
the author, and nothing here logs. What remains linkable for an anonymous one is what the author alone
can see: their own list, their export, and the answer notice in their own feed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

from pymongo import ASCENDING, DESCENDING, IndexModel

from schemas.suggestions import SuggestionCategory, SuggestionStatus
from server import audit, content_check, orgs, ratelimit
from server.context import Context
from server.db import indexes, transaction, update_then_get
from server.errors import ApiError, forbidden, invalid, not_found
from server.feed import writing as feed_writing
from server.ids import new_id
from server.members import COLLECTION as MEMBERS
from server.pagination import Keyset, page
from server.scope import Principal

COLLECTION = "suggestions"
AUTHORS = "suggestion_authors"  # _id = suggestion id; member_id = its author (private: see the note)
STATUSES = get_args(SuggestionStatus)
CATEGORIES = get_args(SuggestionCategory)
# Writing is cheap and reading them is someone's work: a member may send this many a day.
DAILY_LIMIT = 20
NOTICE_KIND = "suggestion"

indexes(
    COLLECTION,
    IndexModel([("org_path", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("category", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("status", ASCENDING), ("category", ASCENDING), ("_id", DESCENDING)]),
)
indexes(AUTHORS, IndexModel([("member_id", ASCENDING), ("_id", DESCENDING)]))


def suggestion_not_found() -> ApiError:
    return not_found("suggestion_not_found", "suggestion")


def _answer_out(doc: dict) -> dict | None:
    answer = doc.get("answer")
    return None if answer is None else {"text": answer["text"], "answered_at": answer["at"]}


def _out(doc: dict, author: dict | None) -> dict:
    return {"id": doc["_id"], "org_id": doc["org_id"], "category": doc["category"], "text": doc["text"],
            "anonymous": doc["anonymous"], "status": doc["status"], "created_at": doc["created_at"],
            "author": author, "answer": _answer_out(doc), "content_flag": doc.get("content_flag")}


async def _named_authors(ctx: Context, docs: list[dict]) -> dict[str, dict]:
    """The author of each named suggestion among `docs` (name read now: an anonymised member shows as such)."""
    ids = sorted({d["author_id"] for d in docs if d.get("author_id")})
    if not ids:
        return {}
    return {m["_id"]: {"member_id": m["_id"], "name": m["name"]}
            async for m in ctx.db[MEMBERS].find({"_id": {"$in": ids}}, {"name": 1})}


async def suggestions_out(ctx: Context, docs: list[dict]) -> list[dict]:
    authors = await _named_authors(ctx, docs)
    return [_out(d, None if d["anonymous"] else authors.get(d.get("author_id"))) for d in docs]


async def create(ctx: Context, principal: Principal, body: dict) -> dict:
    await ratelimit.hit(ctx, f"suggestions:{principal.member_id}", DAILY_LIMIT, timedelta(days=1))
    anonymous = body.get("anonymous", False)
    flag = await content_check.check(ctx, principal, body["text"], "text")
    now = ctx.now()
    doc = {"_id": new_id(), "org_id": principal.org_id, "org_path": list(principal.org_path),
           "category": body["category"],
           "text": body["text"],  # the member's free text enters the database here, and only here
           "anonymous": anonymous, "author_id": None if anonymous else principal.member_id,
           "status": "open", "created_at": now, "answer": None, "answered_by": None, "content_flag": flag}

    async def work(txn) -> None:  # the suggestion and its author link, both or neither
        await ctx.db[COLLECTION].insert_one(doc, session=txn)
        await ctx.db[AUTHORS].insert_one({"_id": doc["_id"], "member_id": principal.member_id}, session=txn)

    await transaction(ctx, work)
    return {"id": doc["_id"], "status": doc["status"]}


async def _own_ids(ctx: Context, member_id: str, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
    links, next_cursor = await page(ctx.db[AUTHORS], own_query(member_id), limit, cursor)
    return [link["_id"] for link in links], next_cursor


async def _author_of(ctx: Context, suggestion_id: str, txn) -> str | None:
    link = await ctx.db[AUTHORS].find_one({"_id": suggestion_id}, session=txn)
    return link["member_id"] if link else None


async def list_for(ctx: Context, principal: Principal, *, org_id: str | None, status: str | None,
                   category: str | None, mine: bool, limit: int, cursor: str | None) -> tuple[list[dict], str | None]:
    """An organiser's: the suggestions of the subtrees they organise (or of `org_id`'s); a member's (or with
    `mine`): their own. Newest first."""
    if status is not None and status not in STATUSES:
        raise invalid("status", "status is open or answered.")
    if category is not None and category not in CATEGORIES:
        raise invalid("category", "category is app or work.")
    if mine or (org_id is None and not principal.role_orgs()):
        ids, next_cursor = await _own_ids(ctx, principal.member_id, limit, cursor)
        found = {d["_id"]: d async for d in ctx.db[COLLECTION].find({"_id": {"$in": ids}})}
        docs = [found[i] for i in ids if i in found and status in (None, found[i]["status"])
                and category in (None, found[i]["category"])]
        return await suggestions_out(ctx, docs), next_cursor
    if org_id is not None:
        await orgs.require_role(ctx, principal, org_id, "organiser")
    docs, next_cursor = await page(ctx.db[COLLECTION], list_query(principal, org_id, status, category), limit, cursor)
    return await suggestions_out(ctx, docs), next_cursor


def own_query(member_id: str) -> Keyset:
    """A member's own suggestions, newest first, through their author links on (member_id, _id)."""
    return Keyset(({"member_id": member_id},), descending=True)


def list_query(principal: Principal, org_id: str | None, status: str | None = None,
               category: str | None = None) -> Keyset:
    """The organisers' list, newest first: one branch per subtree they organise (or `org_id`'s), on the
    index of (org_path[, status][, category], _id)."""
    wanted = {**({"status": status} if status else {}), **({"category": category} if category else {})}
    roots = principal.list_roots(org_id)
    return Keyset(tuple({"org_path": root, **wanted} for root in roots), descending=True)


async def get_one(ctx: Context, principal: Principal, suggestion_id: str) -> dict:
    """One suggestion, as the lists show it, to its author (what the reply notice opens) or an organiser of
    its org's subtree; to anyone else it does not exist. An anonymous one shows no author to either."""
    doc = await ctx.db[COLLECTION].find_one({"_id": suggestion_id})
    if doc is None or not (principal.organises(doc["org_path"])
                           or await _author_of(ctx, suggestion_id, None) == principal.member_id):
        raise suggestion_not_found()
    return (await suggestions_out(ctx, [doc]))[0]


async def reply(ctx: Context, principal: Principal, suggestion_id: str, text: str) -> dict:
    """Answer a suggestion (organiser of the author's org subtree); the author's notice and the audit entry
    are written in the same transaction as the answer."""
    doc = await ctx.db[COLLECTION].find_one({"_id": suggestion_id})
    if doc is None:
        raise suggestion_not_found()
    if not principal.organises(doc["org_path"]):
        if await _author_of(ctx, suggestion_id, None) == principal.member_id:
            raise forbidden("An organiser of your organisation answers your suggestion.")
        raise suggestion_not_found()

    async def work(txn) -> dict:
        now = ctx.now()
        answered = await update_then_get(
            ctx.db[COLLECTION], {"_id": suggestion_id, "status": "open"},
            {"$set": {"status": "answered", "answer": {"text": text, "at": now},
                      "answered_by": principal.member_id}}, txn=txn)
        if answered is None:
            raise ApiError(409, "suggestion_answered", "This suggestion has already been answered.")
        author = await _author_of(ctx, suggestion_id, txn)
        if author is not None:
            await feed_writing.notify(ctx, [author], title="您的意见建议有了答复", summary=text,
                                      ref_kind=NOTICE_KIND, ref_id=suggestion_id, org_id=doc["org_id"], txn=txn)
        await audit.record(ctx, actor_id=principal.member_id, action="suggestion.reply", target_kind="suggestion",
                           target_id=suggestion_id, org_path=doc["org_path"], before={"status": "open"},
                           after={"status": "answered"}, details={"category": doc["category"]}, txn=txn)
        return answered

    await transaction(ctx, work)
    return {"status": "answered"}


async def own_for_export(ctx: Context, member_id: str, batch: int):
    """The member's own suggestions, a batch at a time (GET /me/export), as the member sees them."""
    cursor: str | None = None
    while True:
        ids, cursor = await _own_ids(ctx, member_id, batch, cursor)
        found = {d["_id"]: d async for d in ctx.db[COLLECTION].find({"_id": {"$in": ids}})}
        for suggestion_id in ids:
            if suggestion_id in found:
                d = found[suggestion_id]
                yield {"id": d["_id"], "org_id": d["org_id"], "category": d["category"], "text": d["text"],
                       "anonymous": d["anonymous"], "status": d["status"], "created_at": d["created_at"],
                       "answer": _answer_out(d)}
        if cursor is None:
            return


"""Suggestion endpoints (意见建议, API.md §11): write, list, read one, answer."""

from __future__ import annotations

from handlers.base import APIHandler, idempotent
from schemas import openapi
from schemas.suggestions import ReplyIn, ReplyOut, SuggestionCreated, SuggestionIn, SuggestionOut, SuggestionPage
from server import suggestions


class SuggestionsHandler(APIHandler):
    @openapi.endpoint("Write a suggestion about the app or the work, optionally anonymous (any member)",
                      body=SuggestionIn, responses={201: SuggestionCreated}, idempotent=True,
                      errors=("rate_limited",))
    @idempotent
    async def post(self) -> None:
        self.respond(await suggestions.create(self.ctx, self.me, self.decode_fields(SuggestionIn)), status=201)

    @openapi.endpoint("Suggestions, newest first: an organiser's subtrees (or one org's), a member's own; "
                      "an anonymous one never shows its author", responses={200: SuggestionPage},
                      query={"org_id": "one org's subtree (organiser)", "status": "open or answered",
                             "category": "app or work",
                             "mine": "your own suggestions, also for an organiser", "limit": "1..100",
                             "cursor": "from the last page"},
                      errors=("forbidden", "not_found", "invalid_request"))
    async def get(self) -> None:
        limit, cursor = self.page_args()
        items, next_cursor = await suggestions.list_for(
            self.ctx, self.me, org_id=self.query("org_id", max_length=64), status=self.query("status", max_length=20),
            category=self.query("category", max_length=20), mine=bool(self.query_bool("mine")), limit=limit,
            cursor=cursor)
        self.respond({"items": items, "next_cursor": next_cursor})


class SuggestionHandler(APIHandler):
    @openapi.endpoint("One suggestion with its answer (its author, or an organiser of the author's org); "
                      "an anonymous one never shows its author", responses={200: SuggestionOut},
                      errors=("suggestion_not_found",))
    async def get(self, suggestion_id: str) -> None:
        self.respond(await suggestions.get_one(self.ctx, self.me, suggestion_id))


class SuggestionReplyHandler(APIHandler):
    @openapi.endpoint("Answer a suggestion (organiser of the author's org); the author gets a notice",
                      body=ReplyIn, responses={200: ReplyOut},
                      errors=("suggestion_not_found", "forbidden", "suggestion_answered"))
    async def post(self, suggestion_id: str) -> None:
        self.respond(await suggestions.reply(self.ctx, self.me, suggestion_id, self.decode(ReplyIn).text))

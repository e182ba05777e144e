"""Every keyset-paged list is served by the right index: its plan, read with explain() on the embedded
database, is an index scan on an index whose keys are the query's equality fields followed by its sort
fields (the cursor's range on the sort key), never a collection scan.

The queries are the services' own (`list_query`, `feed_queries`, `changed_queries`): the lists run
exactly these. A new paged list adds a row to LISTS.

SecantusDB always sorts in memory (a SORT stage above the index scan) and examines every matching
document even under a limit; that cost is the embedded database's and is measured in docs/scaling.md.
What is checked here is ours: which index the query can walk, and that nothing makes it scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from server import announcements, audit, members, suggestions
from server.activities import reading as activity_reading
from server.activities.store import COLLECTION as ACTIVITIES
from server.feed import reading as feed_reading
from server.feed import sync as feed_sync
from server.feed.store import ITEMS
from server.feed.tokens import Token
from server.ids import new_id
from server.notifications import deliveries
from server.notifications.outbox import DELIVERIES
from server.pagination import Keyset
from server.scope import Principal
from server.study import attendance, checkins, rectification, sessions
from server.study.checkins import SELF_STUDY
from tests.builders import new_session, publish, published, two_branches

# (collection, [(filter, sort), ...]) for one list, built from a world of principals
Queries = list[tuple[dict[str, Any], list[tuple[str, int]]]]


def keyset(query: Keyset) -> Queries:
    """A keyset list's queries for its first page and for a page after a cursor."""
    return [(q, query.sort) for after in (None, new_id()) for q in query.queries(after)]


def sync_queries(who: Principal) -> Queries:
    order = [("seq", 1)]
    tokens = [Token(who.member_id, who.org_id, 0, 40, "*"),  # the first snapshot
              Token(who.member_id, who.org_id, 20, 40, "*"),  # ... a later page of it
              Token(who.member_id, who.org_id, 40, 40),  # incremental
              Token(who.member_id, who.org_id, 0, 40, [who.org_id])]  # after a move
    return [(q, order) for token in tokens for q in feed_sync.changed_queries(who, token, 60)]


def feed_queries(who: Principal, now) -> Queries:
    positions = [None, (now - timedelta(hours=1), new_id())]
    return [(q, feed_reading.FEED_ORDER) for pinned in (True, False) for position in positions
            for q in feed_reading.feed_queries(who, now, pinned, position)]


LISTS: dict[str, tuple[str, Callable[[dict], Queries]]] = {
    "members of an org": (members.COLLECTION, lambda w: keyset(members.list_query(w["organiser"], w["a"]))),
    "members in the caller's scope": (members.COLLECTION, lambda w: keyset(members.list_query(w["organiser"], None))),
    "announcements (organisers)": (announcements.COLLECTION,
                                   lambda w: keyset(announcements.list_query(w["organiser"], None, None, w["now"]))),
    "activities (member)": (ACTIVITIES, lambda w: keyset(activity_reading.list_query(w["member"]))),
    "activities (organiser)": (ACTIVITIES, lambda w: keyset(activity_reading.list_query(w["organiser"]))),
    "study sessions (member)": (sessions.COLLECTION, lambda w: keyset(sessions.list_query(w["member"]))),
    "study sessions (organiser)": (sessions.COLLECTION, lambda w: keyset(sessions.list_query(w["organiser"]))),
    "warnings": (rectification.COLLECTION, lambda w: keyset(rectification.list_query(w["organiser"], None, None))),
    "warnings by status": (rectification.COLLECTION,
                           lambda w: keyset(rectification.list_query(w["organiser"], w["a"], "open"))),
    "leave and make-up requests (member)": (attendance.REQUESTS,
                                            lambda w: keyset(attendance.list_query(w["member"]))),
    "leave and make-up requests (organiser)": (attendance.REQUESTS,
                                               lambda w: keyset(attendance.list_query(w["organiser"]))),
    "self-study log": (SELF_STUDY, lambda w: keyset(checkins.self_study_query(w["member"]))),
    "feed pages": (ITEMS, lambda w: feed_queries(w["member"], w["now"])),
    "sync pages": (ITEMS, lambda w: sync_queries(w["member"])),
    "suggestions (organisers)": (suggestions.COLLECTION,
                                 lambda w: keyset(suggestions.list_query(w["organiser"], None))),
    "suggestions by status and category": (suggestions.COLLECTION, lambda w: keyset(
        suggestions.list_query(w["organiser"], w["a"], "open", "work"))),
    "suggestions (the member's own)": (suggestions.AUTHORS,
                                       lambda w: keyset(suggestions.own_query(w["member"].member_id))),
    "notifications (the member's own)": (DELIVERIES, lambda w: keyset(deliveries.mine_query(w["member"]))),
    "delivery log of a ref": (DELIVERIES, lambda w: keyset(deliveries.ref_query(w["a"]))),
    "delivery log of a ref, one event": (DELIVERIES,
                                         lambda w: keyset(deliveries.ref_query(w["a"], "session_scheduled"))),
    "audit log": (audit.COLLECTION, lambda w: keyset(audit.list_query(w["admin"], None))),
    "audit log by actor": (audit.COLLECTION,
                           lambda w: keyset(audit.list_query(w["admin"], w["a"], w["admin"].member_id))),
    "audit log by target": (audit.COLLECTION, lambda w: keyset(audit.list_query(w["admin"], None, None, w["a"]))),
}


def index_walked(plan: dict) -> dict:
    """The IXSCAN stage of a plan of SORT/LIMIT/FETCH stages over one index scan; fails on anything else."""
    stage = plan
    while stage["stage"] in ("SORT", "LIMIT", "FETCH", "PROJECTION_SIMPLE", "PROJECTION_DEFAULT"):
        stage = stage["inputStage"]
    assert stage["stage"] == "IXSCAN", f"not an index scan: {plan}"
    return stage


def check_plan(plan: dict, query: dict, sort: list[tuple[str, int]]) -> None:
    scan = index_walked(plan)
    keys = list(scan["keyPattern"].items())
    equality = {field for field, value in query.items() if not (isinstance(value, dict) or field.startswith("$"))}
    ranged = {field for field, value in query.items() if isinstance(value, dict)}
    assert not any(field.startswith("$") for field in query), f"{query}: a $-operator around the fields"
    assert {field for field, _ in keys[: len(equality)]} == equality, f"{query}: equality fields {keys}"
    assert [field for field, _ in keys[len(equality):]] == [field for field, _ in sort], f"{query}: sort {keys}"
    assert ranged <= {field for field, _ in sort}, f"{query}: a range off the sort key"
    tail = [(field, direction) for field, direction in keys[len(equality):]]
    forward = all(direction == want for (_, direction), (_, want) in zip(tail, sort, strict=True))
    backward = all(direction == -want for (_, direction), (_, want) in zip(tail, sort, strict=True))
    assert forward or backward, f"{query}: the index's order {keys} is not the sort {sort}"


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_paged_list_walks_its_index(api, name):
    w = two_branches(api)
    publish(api, w["org_a"], w["a"]["id"], "支部通知")
    new_session(api, w["org_a"], w["a"]["id"])
    published(api, w["org_a"], w["a"]["id"])

    def principal(client) -> Principal:
        return Principal.from_member(api.run(api.db[members.COLLECTION].find_one({"_id": client.id})))

    built = {"organiser": principal(w["org_a"]), "member": principal(w["m1"]), "a": w["a"]["id"],
             "admin": principal(api.admin), "now": api.ctx.now()}
    collection, queries_of = LISTS[name]
    queries = queries_of(built)
    assert queries
    for query, sort in queries:
        explained = api.run(api.db[collection].find(query).sort(sort).limit(21).explain())
        check_plan(explained["queryPlanner"]["winningPlan"], query, sort)


def test_the_check_refuses_a_scan_and_a_wrapped_cursor(api):
    """The check itself fails on what the lists used to send: a `$and` around the cursor, an `$in`
    beside a range (both answered by a collection scan), and a sort no index covers."""
    cases = [
        (members.COLLECTION, {"$and": [{"org_path": "o"}, {"_id": {"$gt": "a"}}]}, [("_id", 1)]),
        (ITEMS, {"audience_org": {"$in": ["o", "p"]}, "seq": {"$gt": 1, "$lte": 9}}, [("seq", 1)]),
        (ITEMS, {"audience_org": "o", "state": "live"}, [("published_at", -1)]),
    ]
    for collection, query, sort in cases:
        explained = api.run(api.db[collection].find(query).sort(sort).limit(21).explain())
        with pytest.raises(AssertionError):
            check_plan(explained["queryPlanner"]["winningPlan"], query, sort)

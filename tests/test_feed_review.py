"""Review findings on the feed, sync, announcements and files, each pinned by a test through HTTP."""

from __future__ import annotations

from server.feed import sequence as feed_sequence
from server.feed import store as feed_store
from server.feed import writing as feed_writing
from tests.test_announcements import world
from tests.test_feed import publish, sync_all


def _auth(client) -> dict:
    return {"Authorization": f"Bearer {client.token}"}


def test_more_pinned_items_than_a_page_and_a_page_full_of_pinned_items(api):
    """Paging never loses items: pinned ones beyond the first page, and unpinned ones after a page
    that pinned items filled exactly."""
    w = world(api)
    org_a, a_id, m1 = w["org_a"], w["a"]["id"], w["m1"]
    plain = []
    for i in range(3):
        plain.append(publish(api, org_a, a_id, f"普通{i}"))
        api.clock.advance(seconds=1)
    pinned = []
    for i in range(3):
        pinned.append(publish(api, org_a, a_id, f"置顶{i}", pinned=True))
        api.clock.advance(seconds=1)
    expected = list(reversed(pinned)) + list(reversed(plain))

    for limit in (1, 2, 3, 4, 5):
        page = m1.ok("GET", f"/feed?limit={limit}")
        seen = [i["ref_id"] for i in page["items"]]
        assert seen == expected[:limit], limit
        before = page["next_before"]
        while before:
            page = m1.ok("GET", f"/feed?limit={limit}&before={before}")
            assert len(page["items"]) <= limit
            seen += [i["ref_id"] for i in page["items"]]
            before = page["next_before"]
        assert seen == expected, limit


def test_move_deletes_items_of_the_old_branch_edited_since_the_token_and_no_old_tombstone_twice(api):
    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    edited = publish(api, org_a, w["a"]["id"], "之后会改")
    kept = publish(api, org_a, w["a"]["id"], "不改")
    gone = publish(api, org_a, w["a"]["id"], "之前撤回")
    changes, token = sync_all(m1)
    assert sorted(c["item"]["ref_id"] for c in changes) == sorted([edited, kept, gone])
    org_a.delete(f"/announcements/{gone}")
    changes, token = sync_all(m1, token)
    assert changes == [{"op": "delete", "id": f"announcement:{gone}"}]
    # the member is away while one item is edited, then moves to branch B
    away = token
    org_a.ok("PATCH", f"/announcements/{edited}", json={"title": "改过了"})
    api.admin.ok("PATCH", f"/members/{m1.id}", json={"org_id": w["b"]["id"]})
    moved = api.as_member({**m1.member, "org_id": w["b"]["id"]})
    changes, _ = sync_all(moved, away)
    # both A items go, once each; the tombstone they already had is not sent again
    assert sorted(c.get("id") for c in changes) == sorted(
        [f"announcement:{edited}", f"announcement:{kept}"]), changes
    assert moved.ok("GET", "/feed")["items"] == []


def test_a_move_answers_in_pages_of_at_most_limit(api):
    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    a_ids = [publish(api, org_a, w["a"]["id"], f"A{i}") for i in range(5)]
    b_ids = [publish(api, api.organiser(w["b"]["id"]), w["b"]["id"], f"B{i}") for i in range(3)]
    _, token = sync_all(m1)
    api.admin.ok("PATCH", f"/members/{m1.id}", json={"org_id": w["b"]["id"]})
    moved = api.as_member({**m1.member, "org_id": w["b"]["id"]})
    got = []
    since = token
    while True:
        body = moved.ok("GET", f"/sync?limit=2&since={since}")
        assert len(body["changes"]) <= 2
        got += body["changes"]
        since = body["next_since"]
        if not body["has_more"]:
            break
    deletes = sorted(c["id"] for c in got if c["op"] == "delete")
    upserts = sorted(c["item"]["ref_id"] for c in got if c["op"] == "upsert")
    assert deletes == sorted(f"announcement:{a}" for a in a_ids)
    assert upserts == sorted(b_ids)
    assert body["unread_count"] == 3


def test_many_concurrent_reads_and_acks_of_one_member_count_once(api):
    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    aid = publish(api, org_a, w["a"]["id"], "同时阅读")
    _, token = sync_all(m1)
    before = api.run(api.db[feed_store.COUNTER].find_one({"_id": "seq"}))["value"]
    headers = _auth(m1)
    calls = [lambda http: http.post(f"/announcements/{aid}/read", headers=headers) for _ in range(15)]
    calls += [lambda http: http.post(f"/announcements/{aid}/ack", headers=headers) for _ in range(15)]
    answers = api.concurrently(calls)
    assert [r.status for r in answers] == [204] * 30, [(r.status, r.json) for r in answers if r.status != 204]
    assert api.run(api.db[feed_store.READS].count_documents({"member_id": m1.id})) == 1
    after = api.run(api.db[feed_store.COUNTER].find_one({"_id": "seq"}))["value"]
    assert after == before + 1  # one read, one sequence number
    receipts = org_a.ok("GET", f"/announcements/{aid}/receipts")
    assert receipts["read"] == 1 and receipts["acked"] == 1
    assert m1.ok("GET", f"/sync?since={token}")["unread_count"] == 0
    assert m1.ok("GET", f"/announcements/{aid}")["acked"] is True


SCANNING = ("$or", "$ne", "$nor", "$not", "$where", "$expr")


def _operators(value) -> set[str]:
    if isinstance(value, dict):
        return {k for k in value if k.startswith("$")} | {o for v in value.values() for o in _operators(v)}
    if isinstance(value, list):
        return {o for v in value for o in _operators(v)}
    return set()


def test_feed_sync_schedule_and_files_never_scan_a_growing_collection(api):
    """SecantusDB answers a filter with any `$or` or `$ne` (and `$in` on some indexes) with a scan of the
    whole collection: about 0.5 s per call at 20,000 feed items. Every query the feed, sync, the
    scheduler, read marks, retraction and file attachments make is explained: none may scan."""
    from datetime import timedelta

    from tests.test_announcements import iso, wait_until
    from tests.test_files import PDF, upload

    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    api.run(api.db.command("profile", 2))
    feed_sequence.state(api.ctx).expiry_checked = None  # the scheduler's first look after a start, profiled too
    try:
        now = api.clock.now()
        fid = upload(org_a, PDF, "application/pdf", "a.pdf").json["id"]
        aid = publish(api, org_a, w["a"]["id"], "附件", file_ids=[fid], pinned=True)
        org_a.ok("PATCH", f"/announcements/{aid}", json={"file_ids": [fid], "title": "附件（改）"})
        publish(api, org_a, w["a"]["id"], "定时", publish_at=iso(now + timedelta(minutes=1)))
        publish(api, org_a, w["a"]["id"], "将过期", expires_at=iso(now + timedelta(minutes=2)))
        gone = publish(api, org_a, w["a"]["id"], "撤回")
        api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="s1", org_id=w["a"]["id"], title="学习",
                                   summary="x", published_at=now, member_ids=[m1.id, w["m2"].id]))
        _, token = sync_all(m1, limit=2)
        m1.ok("GET", "/feed?limit=1")
        m1.ok("GET", "/feed?limit=2&before=" + (m1.ok("GET", "/feed?limit=2")["next_before"] or ""))
        m1.post(f"/announcements/{aid}/read")
        org_a.ok("GET", f"/announcements/{aid}/receipts")
        org_a.delete(f"/announcements/{gone}")
        api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="s1", org_id=w["a"]["id"], title="学习",
                                   summary="x", published_at=now, member_ids=[m1.id]))
        _, token = sync_all(m1, token, limit=2)
        api.clock.advance(minutes=3)
        m1 = api.as_member(m1.member)
        wait_until(lambda: len(sync_all(m1, token)[0]) >= 2)
        api.admin.ok("PATCH", f"/members/{m1.id}", json={"org_id": w["b"]["id"]})
        moved = api.as_member({**m1.member, "org_id": w["b"]["id"]})
        sync_all(moved, token, limit=1)
        assert m1.get(f"/files/{fid}").status in (200, 404)
    finally:
        api.run(api.db.command("profile", 0))
    watched = {feed_store.ITEMS, feed_store.REMOVALS, feed_store.READS, "file_refs", "files", "announcements"}
    entries = api.run(api.db["system.profile"].find({"op": "query"}).to_list())
    checked, scans = 0, []
    for entry in entries:
        command = entry.get("command", {})
        collection = command.get("find")
        if collection not in watched:
            continue
        checked += 1
        used = _operators(command.get("filter", {}))
        # measured on SecantusDB at 20,000 documents: these take 0.3-0.7 s (a whole-collection
        # scan) where the same lookups on indexed keys alone take 1-10 ms
        if used & set(SCANNING) or (collection == feed_store.REMOVALS and "$in" in used) or (
                collection == "file_refs" and "$in" in used):
            scans.append((collection, command["filter"]))
        expiry = command.get("filter", {}).get("expires_at")
        if isinstance(expiry, dict) and not {"$gt", "$gte"} & set(expiry):  # walks every null expiry too
            scans.append((collection, command["filter"]))
    assert checked > 20
    assert not scans, "\n".join(map(repr, scans))


def test_a_forged_sync_token_reveals_nothing_of_another_branch(api):
    """The token carries the member's org and the orgs to add or delete after a move; written by the
    client it could name another branch's items. Tokens are signed: an altered one is refused."""
    import base64
    import json

    w = world(api)
    mb = w["mb"]
    a_item = publish(api, w["org_a"], w["a"]["id"], "A支部内部")
    _, token = sync_all(mb)
    body, dot, mac = token.partition(".")
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    a_org = w["a"]["id"]

    def forge(**changes) -> str:  # fields: member, org, s, b, orgs to add, orgs to delete, ...
        altered = list(fields)
        for name, value in changes.items():
            index = "mosbxd".index(name)
            altered += [None] * (index + 1 - len(altered))
            altered[index] = value
        raw = json.dumps(altered, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=") + dot + mac

    forged = [forge(o=a_org), forge(x=[a_org]), forge(s=0, b=0, x=[a_org]), forge(d=[a_org])]
    for token in forged:
        answer = mb.get(f"/sync?since={token}&limit=200")
        assert a_item not in answer.content.decode(), answer.json
        assert answer.status == 422 and answer.code == "invalid_request", answer.json
    assert mb.get(f"/sync?since={token}x").status == 422
    assert mb.ok("GET", f"/sync?since={sync_all(mb)[1]}")["changes"] == []


def test_an_unsigned_token_of_an_earlier_release_starts_sync_again(api):
    import base64
    import json

    w = world(api)
    m1 = w["m1"]
    _, token = sync_all(m1)
    body = token.partition(".")[0]
    fields = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    old = base64.urlsafe_b64encode(json.dumps(fields[:5]).encode()).decode().rstrip("=")
    answer = m1.get(f"/sync?since={old}")
    assert answer.status == 410 and answer.code == "sync_token_expired"
    assert m1.get("/sync?since=not-a-token").code == "invalid_request"


def test_a_move_deletes_an_item_the_old_branch_lost_to_a_list_of_names_meanwhile(api):
    """A study session goes to the org subtree until its list is fixed, then to those named. A member
    who had it, is left off the list and moves branch before syncing still gets its delete, once."""
    w = world(api)
    m1 = w["m1"]
    now = api.clock.now()
    api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="s1", org_id=w["a"]["id"], title="学习",
                               summary="x", published_at=now))
    changes, token = sync_all(m1)
    assert [c["item"]["id"] for c in changes] == ["study_session:s1"]
    api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="s1", org_id=w["a"]["id"], title="学习",
                               summary="x", published_at=now, member_ids=[w["m2"].id]))
    api.admin.ok("PATCH", f"/members/{m1.id}", json={"org_id": w["b"]["id"]})
    moved = api.as_member({**m1.member, "org_id": w["b"]["id"]})
    changes, token = sync_all(moved, token, limit=1)
    assert changes == [{"op": "delete", "id": "study_session:s1"}]
    assert sync_all(moved, token)[0] == []


def test_bodies_carry_the_fields_of_the_contract_with_utc_times(api):
    """API.md §7-8 field names, exactly for receipts, sync, feed pages and files; times in UTC with Z."""
    from tests.test_files import PDF, upload

    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    file = upload(org_a, PDF, "application/pdf", "a.pdf")
    assert file.status == 201 and set(file.json) == {"id", "name", "size", "mime", "sha256"}
    created = org_a.ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "通知", "body": "内容", "publish_at": "2026-01-01T08:00:00+08:00",
        "file_ids": [file.json["id"]]})
    assert {"id", "org_id", "title", "body", "pinned", "must_read", "publish_at", "expires_at", "file_ids",
            "version", "read", "acked"} <= set(created)
    assert created["publish_at"] == "2026-01-01T00:00:00Z" and created["expires_at"] is None
    receipts = org_a.ok("GET", f"/announcements/{created['id']}/receipts")
    assert set(receipts) == {"audience", "read", "acked", "unread_members"}
    assert all(set(m) == {"member_id", "name"} for m in receipts["unread_members"])
    page = m1.ok("GET", "/feed")
    assert set(page) == {"items", "next_before"}
    (item,) = page["items"]
    assert {"id", "kind", "ref_id", "org_id", "title", "summary", "pinned", "must_read", "published_at",
            "updated_at", "version", "read"} <= set(item)
    assert item["published_at"] == "2026-01-01T00:00:00Z" and item["updated_at"].endswith("Z")
    sync = m1.ok("GET", "/sync")
    assert set(sync) == {"changes", "next_since", "has_more", "unread_count"}
    assert sync["changes"] == [{"op": "upsert", "item": item}] and sync["unread_count"] == 1
    assert m1.ok("GET", f"/announcements/{created['id']}")["publish_at"] == "2026-01-01T00:00:00Z"

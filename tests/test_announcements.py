"""Announcements through HTTP: publishing, scheduling, expiry, edits, retraction, scope, receipts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from tests.builders import iso, publish, two_branches, wait_until


def server_now(api) -> datetime:
    return api.clock.now()


def feed_ids(client) -> list[str]:
    return [i["ref_id"] for i in client.ok("GET", "/feed?limit=100")["items"]]


def test_publish_read_ack_receipts(api):
    w = two_branches(api)
    created = w["org_a"].ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "支部大会通知", "body": "周五下午三点召开支部党员大会。", "must_read": True})
    assert created["version"] == 1 and created["read"] is False and created["acked"] is False
    assert created["must_read"] is True and created["file_ids"] == [] and created["expires_at"] is None
    aid = created["id"]

    got = w["m1"].ok("GET", f"/announcements/{aid}")
    assert got["title"] == "支部大会通知" and got["read"] is False
    assert got["publish_at"] == created["publish_at"] and got["updated_at"] == created["updated_at"]
    assert aid in feed_ids(w["m1"]) and aid not in feed_ids(w["mb"])

    receipts = w["org_a"].ok("GET", f"/announcements/{aid}/receipts")
    assert receipts["audience"] == 3 and receipts["read"] == 0 and receipts["acked"] == 0
    assert {m["name"] for m in receipts["unread_members"]} == {"张书记", "李明", "王芳"}

    assert w["m1"].post(f"/announcements/{aid}/read").status == 204
    assert w["m1"].post(f"/announcements/{aid}/read").status == 204  # idempotent
    assert w["m2"].post(f"/announcements/{aid}/ack").status == 204
    assert w["m2"].post(f"/announcements/{aid}/ack").status == 204
    receipts = w["org_a"].ok("GET", f"/announcements/{aid}/receipts")
    assert receipts["audience"] == 3 and receipts["read"] == 2 and receipts["acked"] == 1
    assert [m["name"] for m in receipts["unread_members"]] == ["张书记"]
    assert w["m2"].ok("GET", f"/announcements/{aid}")["acked"] is True
    assert w["m2"].ok("GET", f"/announcements/{aid}")["read"] is True

    # unread counts agree between /feed, /sync and the receipts
    for client, unread in ((w["m1"], 0), (w["m2"], 0), (w["org_a"], 1)):
        items = client.ok("GET", "/feed")["items"]
        assert [i["read"] for i in items if i["ref_id"] == aid] == [unread == 0]
        assert client.ok("GET", "/sync")["unread_count"] == unread


def test_scheduled_announcement_appears_on_time_and_expires(api):
    w = two_branches(api)
    m1 = w["m1"]
    token = m1.ok("GET", "/sync")["next_since"]
    now = server_now(api)
    aid = w["org_a"].ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "明日学习", "body": "学习材料见附件。",
        "publish_at": iso(now + timedelta(hours=1)), "expires_at": iso(now + timedelta(hours=3))})["id"]
    assert m1.get(f"/announcements/{aid}").code == "announcement_not_found"
    assert aid not in feed_ids(m1)
    assert w["org_a"].ok("GET", f"/announcements/{aid}")["id"] == aid  # its organisers see it scheduled
    time.sleep(0.8)
    quiet = m1.ok("GET", f"/sync?since={token}")
    assert quiet["changes"] == []
    token = quiet["next_since"]
    assert m1.post(f"/announcements/{aid}/read").code == "announcement_not_found"

    api.clock.advance(hours=1, seconds=1)  # nobody calls anything: the feed's own task publishes it
    m1, org_a = api.as_member(m1.member), api.as_member(w["org_a"].member)  # access tokens live 15 min
    assert aid in feed_ids(m1)
    changes = wait_until(lambda: m1.ok("GET", f"/sync?since={token}")["changes"])
    assert [(c["op"], c["item"]["ref_id"], c["item"]["version"]) for c in changes] == [("upsert", aid, 1)]
    token = m1.ok("GET", f"/sync?since={token}")["next_since"]
    assert m1.ok("GET", f"/announcements/{aid}")["id"] == aid

    api.clock.advance(hours=2)
    m1, org_a = api.as_member(m1.member), api.as_member(w["org_a"].member)
    assert aid not in feed_ids(m1)
    assert m1.get(f"/announcements/{aid}").code == "announcement_not_found"
    changes = wait_until(lambda: m1.ok("GET", f"/sync?since={token}")["changes"])
    assert changes == [{"op": "delete", "id": f"announcement:{aid}"}]
    assert org_a.ok("GET", f"/announcements/{aid}")["id"] == aid  # organisers still see it


def test_edit_bumps_version_and_retraction_deletes(api):
    w = two_branches(api)
    m1, org_a = w["m1"], w["org_a"]
    aid = org_a.ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "初稿", "body": "内容"})["id"]
    snapshot = m1.ok("GET", "/sync")
    assert [c["item"]["version"] for c in snapshot["changes"] if c["item"]["ref_id"] == aid] == [1]
    token = snapshot["next_since"]

    edited = org_a.ok("PATCH", f"/announcements/{aid}", json={"title": "定稿", "pinned": True})
    assert edited["version"] == 2 and edited["title"] == "定稿" and edited["pinned"] is True
    assert edited["body"] == "内容"
    sync = m1.ok("GET", f"/sync?since={token}")
    assert [(c["op"], c["item"]["title"], c["item"]["version"], c["item"]["pinned"]) for c in sync["changes"]] \
        == [("upsert", "定稿", 2, True)]
    token = sync["next_since"]
    assert m1.ok("GET", f"/announcements/{aid}")["version"] == 2

    # members of the audience may not edit, retract or see receipts; other branches do not even see it
    assert m1.patch(f"/announcements/{aid}", json={"title": "x"}).code == "forbidden"
    assert m1.delete(f"/announcements/{aid}").code == "forbidden"
    assert m1.get(f"/announcements/{aid}/receipts").code == "forbidden"
    org_b = api.organiser(w["b"]["id"])
    for client in (w["mb"], org_b):
        assert client.patch(f"/announcements/{aid}", json={"title": "x"}).code == "announcement_not_found"
        assert client.delete(f"/announcements/{aid}").code == "announcement_not_found"
        assert client.get(f"/announcements/{aid}/receipts").code == "announcement_not_found"
        assert client.post(f"/announcements/{aid}/read").code == "announcement_not_found"

    assert org_a.patch(f"/announcements/{aid}", json={"org_id": w["b"]["id"]}).code == "invalid_request"
    assert org_a.patch(f"/announcements/{aid}", json={"title": ""}).code == "invalid_request"
    assert org_a.patch(f"/announcements/{aid}",
                       json={"expires_at": iso(server_now(api) - timedelta(minutes=1))}).code == "invalid_request"

    assert org_a.delete(f"/announcements/{aid}").status == 204
    sync = m1.ok("GET", f"/sync?since={token}")
    assert sync["changes"] == [{"op": "delete", "id": f"announcement:{aid}"}]
    assert aid not in feed_ids(m1)
    for client in (m1, org_a):
        assert client.get(f"/announcements/{aid}").code == "announcement_not_found"
    assert org_a.delete(f"/announcements/{aid}").code == "announcement_not_found"
    assert org_a.patch(f"/announcements/{aid}", json={"title": "x"}).code == "announcement_not_found"
    assert m1.post(f"/announcements/{aid}/ack").code == "announcement_not_found"


def test_create_refusals_and_idempotency(api):
    w = two_branches(api)
    org_a, a_id = w["org_a"], w["a"]["id"]
    body = {"org_id": a_id, "title": "通知", "body": "内容"}
    assert w["m1"].post("/announcements", json=body).code == "forbidden"
    assert api.organiser(w["b"]["id"]).post("/announcements", json=body).code == "not_found"
    assert api.anonymous().post("/announcements", json=body).code == "unauthenticated"
    assert org_a.post("/announcements", json={**body, "colour": "red"}).code == "invalid_request"
    assert org_a.post("/announcements", json={**body, "title": "x" * 201}).code == "invalid_request"
    assert org_a.post("/announcements", json={**body, "publish_at": "2026-12-01T08:00:00"}).code \
        == "invalid_request"  # no offset
    now = server_now(api)
    late = org_a.post("/announcements", json={**body, "publish_at": iso(now + timedelta(hours=2)),
                                              "expires_at": iso(now + timedelta(hours=1))})
    assert late.code == "invalid_request" and late.json["errors"][0]["field"] == "expires_at"
    assert org_a.post("/announcements", json={**body, "file_ids": ["nope"]}).code == "file_not_found"
    assert org_a.get("/announcements/nope").code == "announcement_not_found"

    first = org_a.post("/announcements", json=body, headers={"Idempotency-Key": "ann-1"})
    again = org_a.post("/announcements", json=body, headers={"Idempotency-Key": "ann-1"})
    assert first.status == again.status == 201 and first.json["id"] == again.json["id"]
    assert org_a.post("/announcements", json={**body, "title": "别的"},
                      headers={"Idempotency-Key": "ann-1"}).code == "idempotency_key_reused"
    assert feed_ids(w["m1"]).count(first.json["id"]) == 1


def test_branch_b_never_sees_branch_a(api):
    w = two_branches(api)
    mb = w["mb"]
    token = mb.ok("GET", "/sync")["next_since"]
    aid = w["org_a"].ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "A支部内部", "body": "仅限第一支部"})["id"]
    # an announcement of the general branch reaches both branches
    gen_org = api.organiser(w["general"]["id"], "总支书记")
    gid = gen_org.ok("POST", "/announcements", 201, json={
        "org_id": w["general"]["id"], "title": "总支通知", "body": "全体党员"})["id"]
    assert feed_ids(mb) == [gid]
    assert set(feed_ids(w["m1"])) == {aid, gid}
    assert mb.get(f"/announcements/{aid}").code == "announcement_not_found"
    assert mb.get(f"/announcements/{aid}/receipts").code == "announcement_not_found"
    assert mb.post(f"/announcements/{aid}/ack").code == "announcement_not_found"
    changes = mb.ok("GET", f"/sync?since={token}")["changes"]
    assert [c["item"]["ref_id"] for c in changes] == [gid]
    snapshot = mb.ok("GET", "/sync")["changes"]
    assert [c["item"]["ref_id"] for c in snapshot] == [gid]
    # the general branch's receipts count both branches; branch A's organiser may not read them
    receipts = gen_org.ok("GET", f"/announcements/{gid}/receipts")
    assert receipts["audience"] == 5
    assert w["org_a"].get(f"/announcements/{gid}/receipts").code == "forbidden"
    # the general branch's organiser may not read or ack for an audience they are not in...
    assert gen_org.post(f"/announcements/{aid}/read").code == "forbidden"
    # ...but sees and manages announcements of the branches below
    assert gen_org.ok("GET", f"/announcements/{aid}/receipts")["audience"] == 3


def test_organisers_list_their_announcements_by_status(api):
    """The console's list: an organiser pages through the announcements of the orgs they organise, in every
    status, and filters by one; a member is refused, and another branch's organiser never sees them."""
    w = two_branches(api)
    org_a, a_id = w["org_a"], w["a"]["id"]
    now = api.clock.now()
    live = publish(api, org_a, a_id, "正在发布")
    scheduled = publish(api, org_a, a_id, "定时发布", publish_at=iso(now + timedelta(hours=2)), must_read=True)
    expiring = publish(api, org_a, a_id, "即将过期", expires_at=iso(now + timedelta(minutes=10)))
    retracted = publish(api, org_a, a_id, "撤回的")
    org_a.ok("DELETE", f"/announcements/{retracted}", 204)
    api.clock.advance(minutes=11)

    listed = org_a.ok("GET", f"/announcements?org_id={a_id}")
    assert [(i["id"], i["status"]) for i in listed["items"]] == [
        (retracted, "retracted"), (expiring, "expired"), (scheduled, "scheduled"), (live, "live")]
    assert listed["next_cursor"] is None and listed["items"][2]["must_read"] is True
    assert "body" not in listed["items"][0]
    for status, expected in [("live", [live]), ("scheduled", [scheduled]), ("expired", [expiring]),
                             ("retracted", [retracted])]:
        assert [i["id"] for i in org_a.ok("GET", f"/announcements?status={status}")["items"]] == expected
    first = org_a.ok("GET", "/announcements?limit=3")
    rest = org_a.ok("GET", f"/announcements?limit=3&cursor={first['next_cursor']}")
    assert [i["id"] for i in first["items"] + rest["items"]] == [i["id"] for i in listed["items"]]
    assert rest["next_cursor"] is None

    bad = org_a.get("/announcements?status=draft")
    assert bad.status == 422 and bad.code == "invalid_request"
    assert w["m1"].get("/announcements").status == 403  # members learn of announcements from the feed
    org_b = api.organiser(w["b"]["id"], "孙书记")
    assert org_b.ok("GET", "/announcements")["items"] == []
    assert org_b.get(f"/announcements?org_id={a_id}").status == 404


def test_receipts_of_a_large_audience_come_in_pages(api):
    """`limit` pages the unread members in id order (a small audience still comes whole); the counts
    are always over the whole audience; a bad cursor is refused."""
    branch = api.org("大支部")
    organiser = api.organiser(branch["id"])
    people = [api.member(branch["id"], f"党员{i}") for i in range(6)]
    aid = organiser.ok("POST", "/announcements", 201, json={"org_id": branch["id"], "title": "通知", "body": "x"})["id"]
    assert people[0].post(f"/announcements/{aid}/read").status == 204
    whole = organiser.ok("GET", f"/announcements/{aid}/receipts")
    assert whole["audience"] == 7 and whole["read"] == 1 and len(whole["unread_members"]) == 6
    assert "next_cursor" not in whole
    seen, cursor = [], None
    while True:
        page = organiser.ok("GET", f"/announcements/{aid}/receipts",
                            params={"limit": 4, **({"cursor": cursor} if cursor else {})})
        assert page["audience"] == 7 and page["read"] == 1 and len(page["unread_members"]) <= 4
        seen += page["unread_members"]
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert seen == whole["unread_members"] and len(seen) == 6
    assert people[1].get(f"/announcements/{aid}/receipts", params={"limit": 4}).status == 403
    bad = organiser.get(f"/announcements/{aid}/receipts", params={"limit": 0})
    assert bad.status == 422

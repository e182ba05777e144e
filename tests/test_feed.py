"""The feed and its sync through HTTP: paging, pinning, ETags, the other kinds of item, audiences,
tombstone expiry (410) and a long-poll woken by a publish."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from server.feed import background as feed_background
from server.feed import store as feed_store
from server.feed import writing as feed_writing
from tests.test_announcements import wait_until, world


def publish(api, org_client, org_id, title, **extra):
    return org_client.ok("POST", "/announcements", 201, json={"org_id": org_id, "title": title,
                                                              "body": f"{title}的内容", **extra})["id"]


def sync_all(client, since=None, limit=100):
    """Follow has_more to the end; return (changes, token)."""
    changes = []
    while True:
        path = f"/sync?limit={limit}" + (f"&since={since}" if since else "")
        body = client.ok("GET", path)
        changes += body["changes"]
        since = body["next_since"]
        if not body["has_more"]:
            return changes, since


def test_feed_order_pinning_paging_and_etag(api):
    w = world(api)
    org_a, a_id, m1 = w["org_a"], w["a"]["id"], w["m1"]
    ids = []
    for i in range(5):
        ids.append(publish(api, org_a, a_id, f"通知{i}"))
        api.clock.advance(seconds=1)
    pinned = publish(api, org_a, a_id, "置顶", pinned=True)
    api.clock.advance(seconds=1)
    newest = publish(api, org_a, a_id, "最新")
    api.clock.advance(seconds=1)

    first = m1.ok("GET", "/feed?limit=3")
    assert [i["ref_id"] for i in first["items"]] == [pinned, newest, ids[4]]
    assert first["items"][0]["pinned"] is True and first["next_before"]
    seen = [i["ref_id"] for i in first["items"]]
    before = first["next_before"]
    while before:
        page = m1.ok("GET", f"/feed?limit=3&before={before}")
        seen += [i["ref_id"] for i in page["items"]]
        before = page["next_before"]
    assert seen == [pinned, newest, ids[4], ids[3], ids[2], ids[1], ids[0]]
    item = first["items"][1]
    assert item["kind"] == "announcement" and item["id"] == f"announcement:{newest}"
    assert {"id", "kind", "ref_id", "org_id", "title", "summary", "pinned", "must_read", "published_at",
            "updated_at", "version", "read"} <= item.keys()

    # a new item does not shift later pages: paging is by (published_at, id), not by offset
    page2 = m1.ok("GET", f"/feed?limit=3&before={first['next_before']}")
    publish(api, org_a, a_id, "插入")
    assert m1.ok("GET", f"/feed?limit=3&before={first['next_before']}")["items"] == page2["items"]

    response = m1.get("/feed")
    etag = response.headers["ETag"]
    assert m1.get("/feed", headers={"If-None-Match": etag}).status == 304
    m1.post(f"/announcements/{newest}/read")
    changed = m1.get("/feed", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert [i["read"] for i in changed.json["items"] if i["ref_id"] == newest] == [True]

    assert m1.get("/feed?limit=0").code == "invalid_request"
    assert m1.get("/feed?limit=101").code == "invalid_request"
    assert m1.get("/feed?before=%%%").code == "invalid_request"
    assert api.anonymous().get("/feed").code == "unauthenticated"


def test_sync_snapshot_pages_then_changes_and_etag(api):
    w = world(api)
    org_a, a_id, m1 = w["org_a"], w["a"]["id"], w["m1"]
    ids = {publish(api, org_a, a_id, f"通知{i}") for i in range(7)}
    retracted = publish(api, org_a, a_id, "撤回的")
    org_a.delete(f"/announcements/{retracted}")

    pages = []
    since = None
    while True:
        body = m1.ok("GET", "/sync?limit=3" + (f"&since={since}" if since else ""))
        pages.append(body)
        since = body["next_since"]
        if not body["has_more"]:
            break
    assert [len(p["changes"]) for p in pages] == [3, 3, 1]
    got = [c["item"]["ref_id"] for p in pages for c in p["changes"]]
    assert all(c["op"] == "upsert" for p in pages for c in p["changes"])  # no tombstones in a snapshot
    assert sorted(got) == sorted(ids) and len(got) == len(set(got))
    assert pages[-1]["unread_count"] == 7

    empty = m1.get(f"/sync?since={since}")
    assert empty.status == 200 and empty.json["changes"] == [] and empty.json["has_more"] is False
    etag = empty.headers["ETag"]
    assert m1.get(f"/sync?since={since}", headers={"If-None-Match": etag}).status == 304
    assert m1.get(f"/sync?since={since}&timeout=1", headers={"If-None-Match": etag}).status == 304

    one = sorted(ids)[0]
    org_a.patch(f"/announcements/{one}", json={"body": "改过了"})
    after = m1.get(f"/sync?since={since}", headers={"If-None-Match": etag})
    assert after.status == 200
    assert [(c["op"], c["item"]["ref_id"], c["item"]["version"], c["item"]["summary"])
            for c in after.json["changes"]] == [("upsert", one, 2, "改过了")]

    m1.post(f"/announcements/{one}/read")
    assert m1.ok("GET", f"/sync?since={after.json['next_since']}")["unread_count"] == 6

    for bad in ("limit=0", "limit=201", "timeout=31", "timeout=-1", "since=not-a-token"):
        assert m1.get(f"/sync?{bad}").code == "invalid_request", bad
    assert w["m2"].get(f"/sync?since={since}").code == "invalid_request"  # another member's token


def test_other_kinds_notices_and_member_audiences(api):
    """What activities and study sessions call: publish_item / retract_item / notify."""
    w = world(api)
    m1, m2, mb = w["m1"], w["m2"], w["mb"]
    tokens = {c.id: sync_all(c)[1] for c in (m1, m2, mb)}
    now = api.clock.now()
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act1", org_id=w["general"]["id"],
                               title="志愿服务", summary="周六上午社区志愿服务", published_at=now))
    api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="ss1", org_id=w["a"]["id"],
                               title="专题学习", summary="第三季度专题学习", published_at=now,
                               member_ids=[m1.id, m2.id]))
    api.run(feed_writing.notify(api.ctx, [m1.id], title="已从候补转为报名成功", summary="志愿服务：你已确认参加",
                         ref_kind="activity", ref_id="act1", org_id=w["general"]["id"]))

    def kinds(client):
        changes, tokens[client.id] = sync_all(client, tokens[client.id])
        return sorted((c["op"], c["item"]["kind"] if c["op"] == "upsert" else c["id"]) for c in changes)

    assert kinds(m1) == [("upsert", "activity"), ("upsert", "notice"), ("upsert", "study_session")]
    assert kinds(m2) == [("upsert", "activity"), ("upsert", "study_session")]
    assert kinds(mb) == [("upsert", "activity")]
    notice = [i for i in m1.ok("GET", "/feed")["items"] if i["kind"] == "notice"][0]
    assert notice["ref_id"] == "act1" and notice["ref_kind"] == "activity" and notice["read"] is False
    assert m2.post(f"/feed/{notice['id']}/read").code == "not_found"
    assert m1.post(f"/feed/{notice['id']}/read").status == 204
    assert [i["read"] for i in m1.ok("GET", "/feed")["items"] if i["kind"] == "notice"] == [True]

    # the same content again records nothing; a change bumps the version
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act1", org_id=w["general"]["id"],
                               title="志愿服务", summary="周六上午社区志愿服务", published_at=now))
    assert kinds(mb) == []
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act1", org_id=w["general"]["id"],
                               title="志愿服务（改期）", summary="改到周日", published_at=now))
    changes, tokens[mb.id] = sync_all(mb, tokens[mb.id])
    assert [(c["item"]["title"], c["item"]["version"]) for c in changes] == [("志愿服务（改期）", 2)]

    # m2 leaves the session's attendees: a delete for m2 only
    away = tokens[m2.id]
    api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="ss1", org_id=w["a"]["id"],
                               title="专题学习", summary="第三季度专题学习", published_at=now, member_ids=[m1.id]))
    assert kinds(m2) == [("delete", "study_session:ss1"), ("upsert", "activity")]  # and the rename
    changes, tokens[m1.id] = sync_all(m1, tokens[m1.id])
    assert sorted((c["op"], c["item"]["kind"], c["item"]["version"]) for c in changes) == [
        ("upsert", "activity", 2), ("upsert", "study_session", 2)]
    assert "ss1" not in [i["ref_id"] for i in m2.ok("GET", "/feed")["items"]]
    fresh, _ = sync_all(m2)  # a new snapshot holds what m2 sees, and no tombstones
    assert sorted(c["item"]["kind"] for c in fresh if c["op"] == "upsert") == ["activity"] and len(fresh) == 1

    # later edits of the session send m2 nothing more (one delete per removal), also when m2 was away
    api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="ss1", org_id=w["a"]["id"],
                               title="专题学习（改）", summary="第三季度专题学习", published_at=now,
                               member_ids=[m1.id]))
    assert kinds(m2) == []
    assert [c["op"] for c in sync_all(m2, away)[0] if "ss1" in c.get("id", "")] == ["delete"]
    # from the whole org to named attendees: the others lose it, once
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act2", org_id=w["a"]["id"],
                               title="读书会", summary="全支部", published_at=now))
    assert ("upsert", "activity") in kinds(m2)
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act2", org_id=w["a"]["id"],
                               title="读书会", summary="限定人员", published_at=now, member_ids=[m1.id]))
    api.run(feed_writing.publish_item(api.ctx, kind="activity", ref_id="act2", org_id=w["a"]["id"],
                               title="读书会（改）", summary="限定人员", published_at=now, member_ids=[m1.id]))
    assert kinds(m2) == [("delete", "activity:act2")]
    m1_changes, tokens[m1.id] = sync_all(m1, tokens[m1.id])
    assert [(c["op"], c["item"]["version"]) for c in m1_changes if c["op"] == "upsert"
            and c["item"]["ref_id"] == "act2"] == [("upsert", 3)] and len(m1_changes) == 2

    # retraction (an activity cancelled) reaches everyone who had it
    api.run(feed_writing.retract_item(api.ctx, kind="activity", ref_id="act1"))
    assert kinds(mb) == [("delete", "activity:act1")]
    assert ("delete", "activity:act1") in kinds(m1)


def test_moving_to_another_branch_is_leaving_the_audience(api):
    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    a_only = publish(api, org_a, w["a"]["id"], "A支部")
    general = publish(api, api.organiser(w["general"]["id"]), w["general"]["id"], "总支")
    b_only = publish(api, api.organiser(w["b"]["id"]), w["b"]["id"], "B支部")
    changes, token = sync_all(m1)
    assert sorted(c["item"]["ref_id"] for c in changes) == sorted([a_only, general])
    api.admin.ok("PATCH", f"/members/{m1.id}", json={"org_id": w["b"]["id"]})
    moved = api.as_member({**m1.member, "org_id": w["b"]["id"]})
    changes, token = sync_all(moved, token, limit=1)
    assert sorted((c["op"], c.get("id") or c["item"]["ref_id"]) for c in changes) == sorted(
        [("delete", f"announcement:{a_only}"), ("upsert", b_only)])
    assert sync_all(moved, token)[0] == []
    assert sorted(i["ref_id"] for i in moved.ok("GET", "/feed")["items"]) == sorted([general, b_only])


def test_old_tokens_answer_410_after_tombstones_are_purged(api):
    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    _, old_token = sync_all(m1)
    aid = publish(api, org_a, w["a"]["id"], "将撤回")
    org_a.delete(f"/announcements/{aid}")
    now = api.clock.now()
    for attendees in ([m1.id, w["m2"].id], [m1.id]):  # m2 loses a session: a removal record
        api.run(feed_writing.publish_item(api.ctx, kind="study_session", ref_id="s1", org_id=w["a"]["id"], title="学习",
                                   summary="x", published_at=now, member_ids=attendees))
    assert api.run(api.db[feed_store.REMOVALS].count_documents({})) == 1
    _, fresh_token = sync_all(m1, old_token)
    api.clock.advance(days=feed_background.TOMBSTONE_DAYS + 1)
    m1 = api.as_member(m1.member)
    assert wait_until(lambda: m1.get(f"/sync?since={old_token}").code == "sync_token_expired")
    assert m1.ok("GET", f"/sync?since={fresh_token}")["changes"] == []  # it already had the tombstone
    assert m1.ok("GET", "/sync")["has_more"] is False  # starting again works
    # later the tombstone itself goes
    api.clock.advance(seconds=feed_background.PURGE_EVERY_SECONDS + feed_background.PURGE_GRACE.total_seconds() + 1)
    assert wait_until(lambda: api.run(api.db[feed_store.ITEMS].count_documents({"_id": f"announcement:{aid}"})) == 0)
    # the purge deletes removal records right after the items: wait for that too, not assume it
    assert wait_until(lambda: api.run(api.db[feed_store.REMOVALS].count_documents({})) == 0)


def test_long_poll_wakes_on_publish(api):
    w = world(api)
    m1 = w["m1"]
    _, token = sync_all(m1)
    result = {}

    def poll():
        started = time.monotonic()
        result["body"] = m1.ok("GET", f"/sync?since={token}&timeout=20")
        result["woke"] = time.monotonic()
        result["waited"] = result["woke"] - started

    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(1.0)
    assert "body" not in result  # still waiting
    published = time.monotonic()
    aid = publish(api, w["org_a"], w["a"]["id"], "长轮询")
    thread.join(25)
    assert [c["item"]["ref_id"] for c in result["body"]["changes"]] == [aid]
    assert result["woke"] - published < 1.0
    unread = result["body"]["unread_count"]
    assert unread == m1.ok("GET", "/sync")["unread_count"] == 1

    # reading it on another device while this one waits: no change to deliver, one fewer unread
    waiting = {}
    token = result["body"]["next_since"]
    thread = threading.Thread(target=lambda: waiting.update(
        body=m1.ok("GET", f"/sync?since={token}&timeout=2")))
    thread.start()
    time.sleep(0.5)
    api.as_member(m1.member).post(f"/announcements/{aid}/read")
    thread.join(10)
    assert waiting["body"]["changes"] == [] and waiting["body"]["unread_count"] == 0

    # a change for someone else does not end the poll early; the timeout does, with nothing
    started = time.monotonic()
    publish(api, api.organiser(w["b"]["id"]), w["b"]["id"], "别的支部")
    body = m1.ok("GET", f"/sync?since={result['body']['next_since']}&timeout=1")
    assert body["changes"] == [] and time.monotonic() - started >= 0.9


def test_edits_nobody_can_see_send_nothing(api):
    """Editing or retracting an expired or not-yet-published announcement is not a change for members."""
    from tests.test_announcements import iso

    w = world(api)
    org_a, m1 = w["org_a"], w["m1"]
    now = api.clock.now()
    expiring = publish(api, org_a, w["a"]["id"], "将过期", expires_at=iso(now + timedelta(minutes=5)))
    later = publish(api, org_a, w["a"]["id"], "稍后发布", publish_at=iso(now + timedelta(hours=1)))
    changes, token = sync_all(m1)
    assert [c["item"]["ref_id"] for c in changes] == [expiring]
    api.clock.advance(minutes=6)
    org_a, m1 = api.as_member(org_a.member), api.as_member(m1.member)
    assert wait_until(lambda: m1.ok("GET", f"/sync?since={token}")["changes"]) == [
        {"op": "delete", "id": f"announcement:{expiring}"}]
    token = m1.ok("GET", f"/sync?since={token}")["next_since"]
    org_a.ok("PATCH", f"/announcements/{expiring}", json={"title": "过期后改标题"})
    org_a.ok("PATCH", f"/announcements/{later}", json={"title": "发布前改标题"})
    time.sleep(0.6)
    assert m1.ok("GET", f"/sync?since={token}")["changes"] == []
    # un-expiring it brings it back with its new version; the scheduled one arrives edited, once
    org_a.ok("PATCH", f"/announcements/{expiring}", json={"expires_at": None})
    api.clock.advance(hours=1)
    m1 = api.as_member(m1.member)
    got = wait_until(lambda: len(sync_all(m1, token)[0]) == 2 and sync_all(m1, token)[0])
    assert sorted((c["item"]["title"], c["item"]["version"]) for c in got) == [("发布前改标题", 2), ("过期后改标题", 3)]
    _, token = sync_all(m1, token)
    # retracting something already gone from the feed sends nothing either
    org_a = api.as_member(org_a.member)
    org_a.ok("PATCH", f"/announcements/{later}", json={"publish_at": iso(api.clock.now() + timedelta(days=1))})
    changes, token = sync_all(m1, token)
    assert changes == [{"op": "delete", "id": f"announcement:{later}"}]
    org_a.delete(f"/announcements/{later}")
    time.sleep(0.6)
    assert sync_all(m1, token)[0] == []

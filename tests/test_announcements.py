"""Announcements through HTTP: publishing, scheduling, expiry, edits, retraction, scope, receipts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def server_now(api) -> datetime:
    return api.clock.now()


def world(api):
    """Two branches under one general branch; an organiser and members in branch A, a member in B."""
    general = api.org("机关总支", "general_branch")
    a = api.org("第一支部", "branch", general["id"])
    b = api.org("第二支部", "branch", general["id"])
    return {"general": general, "a": a, "b": b, "org_a": api.organiser(a["id"], "张书记"),
            "m1": api.member(a["id"], "李明"), "m2": api.member(a["id"], "王芳", gender="female"),
            "mb": api.member(b["id"], "赵强")}


def wait_until(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def feed_ids(client) -> list[str]:
    return [i["ref_id"] for i in client.ok("GET", "/feed?limit=100")["items"]]


def test_publish_read_ack_receipts(api):
    w = world(api)
    created = w["org_a"].ok("POST", "/announcements", 201, json={
        "org_id": w["a"]["id"], "title": "支部大会通知", "body": "周五下午三点召开支部党员大会。", "must_read": True})
    assert created["version"] == 1 and created["read"] is False and created["acked"] is False
    assert created["must_read"] is True and created["file_ids"] == [] and created["expires_at"] is None
    aid = created["id"]

    got = w["m1"].ok("GET", f"/announcements/{aid}")
    assert got["title"] == "支部大会通知" and got["read"] is False
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

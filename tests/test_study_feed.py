"""Study check-ins in the feed and with files, through HTTP: a session reaches the feed and sync of its
attendees only, edits raise its version, a cancellation shows and then drops out; decided requests, manual
marks and warning scans leave personal notices for the people concerned; rectification files are checked
and readable by organisers only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.builders import advance, count, iso, move_to, new_session, remember, study_world, sync_all, wait_until


def feed(client) -> list[dict]:
    return client.ok("GET", "/feed?limit=100")["items"]


def sessions_in_feed(client) -> dict[str, dict]:
    return {i["ref_id"]: i for i in feed(client) if i["kind"] == "study_session"}


def notices(client, ref_kind: str | None = None) -> list[dict]:
    return [i for i in feed(client) if i["kind"] == "notice" and (ref_kind is None or i["ref_kind"] == ref_kind)]


class Syncer:
    """A client's copy of its feed, kept by GET /sync from a first snapshot on."""

    def __init__(self, client) -> None:
        self.client = client
        changes, self.token = sync_all(client)
        self.items = {c["item"]["id"]: c["item"] for c in changes if c["op"] == "upsert"}

    def pull(self) -> list[dict]:
        changes, self.token = sync_all(self.client, self.token)
        for change in changes:
            if change["op"] == "upsert":
                self.items[change["item"]["id"]] = change["item"]
            else:
                self.items.pop(change["id"], None)
        return changes


def upload(client, text: str) -> str:
    return client.ok("POST", "/files", 201, content=text.encode(),
                     headers={"Content-Type": "text/plain", "X-Filename": "zhenggai.txt"})["id"]


# -- sessions in the feed ---------------------------------------------------------------------------

def test_a_session_reaches_its_attendees_feed_and_sync_with_versions_and_cancellation(api):
    move_to(api, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))  # 09:00 in Shanghai
    w = study_world(api, members=3)
    first, second, third = w.members
    sync = {c.id: Syncer(c) for c in (first, second, w.outsider)}

    place = {"name": "党员活动室", "lat": 31.23, "lng": 121.47, "radius_m": 100}
    everyone = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(days=1), title="党小组会",
                           location=place)
    item = sessions_in_feed(first)[everyone["id"]]
    assert item["id"] == f"study_session:{everyone['id']}" and item["org_id"] == w.branch["id"]
    assert item["title"] == "党小组会" and item["version"] == 1
    assert item["summary"] == "2026-03-03 09:00–10:00 · 党员活动室"  # the org time zone
    assert everyone["id"] in sessions_in_feed(third) and everyone["id"] in sessions_in_feed(w.organiser)
    assert everyone["id"] not in sessions_in_feed(w.outsider)  # another branch's session

    listed = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(days=2), title="专题学习",
                         attendees=[first.id])
    assert listed["id"] in sessions_in_feed(first) and listed["id"] not in sessions_in_feed(second)
    got = {c["item"]["ref_id"] for c in sync[first.id].pull() if c["op"] == "upsert"}
    assert got == {everyone["id"], listed["id"]}
    assert {c["item"]["ref_id"] for c in sync[second.id].pull()} == {everyone["id"]}
    assert sync[w.outsider.id].pull() == []

    # An edit is an upsert with a higher version and the new content.
    w.organiser.ok("PATCH", f"/study/sessions/{everyone['id']}",
                   json={"title": "党小组会（改期）", "starts_at": iso(api.clock.now() + timedelta(days=1, hours=5)),
                         "ends_at": iso(api.clock.now() + timedelta(days=1, hours=7))})
    edits = [c["item"] for c in sync[second.id].pull()]
    assert [(i["ref_id"], i["title"], i["version"]) for i in edits] == [(everyone["id"], "党小组会（改期）", 2)]
    assert edits[0]["summary"] == "2026-03-03 14:00–16:00 · 党员活动室"
    assert sessions_in_feed(first)[everyone["id"]]["version"] == 2

    # Changing the attendee list moves the item: a delete for who left it, an upsert for who joined.
    w.organiser.ok("PATCH", f"/study/sessions/{listed['id']}", json={"attendees": [second.id]})
    assert [c for c in sync[first.id].pull() if c["op"] == "delete"] == [
        {"op": "delete", "id": f"study_session:{listed['id']}"}]
    assert [(c["op"], c["item"]["ref_id"]) for c in sync[second.id].pull()] == [("upsert", listed["id"])]
    assert listed["id"] not in sessions_in_feed(first)

    # Cancelled: it stays in the feed marked as cancelled, with the reason, until its planned end.
    w.organiser.ok("POST", f"/study/sessions/{everyone['id']}/cancel", json={"reason": "书记外出学习"})
    cancelled = [c["item"] for c in sync[second.id].pull()]
    assert [(i["ref_id"], i["version"]) for i in cancelled] == [(everyone["id"], 3)]
    assert cancelled[0]["title"] == "【已取消】党小组会（改期）" and "书记外出学习" in cancelled[0]["summary"]
    assert sessions_in_feed(third)[everyone["id"]]["title"].startswith("【已取消】")
    advance(api, days=1, hours=8)  # past the planned end
    assert everyone["id"] not in sessions_in_feed(third)
    gone = {"op": "delete", "id": f"study_session:{everyone['id']}"}
    assert wait_until(lambda: gone in sync[second.id].pull())  # once the scheduler records the expiry
    assert f"study_session:{everyone['id']}" not in sync[second.id].items
    assert f"study_session:{listed['id']}" in sync[second.id].items
    assert sync[w.outsider.id].pull() == []


def test_the_feed_follows_the_attendee_list_fixed_when_check_in_opens(api):
    move_to(api, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    w = study_world(api, members=1)
    first = w.members[0]
    session = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(hours=1))
    sid = session["id"]
    watcher = Syncer(first)
    advance(api, minutes=40)  # the check-in window opened 10 minutes ago
    late_joiner = api.member(w.branch["id"], "新转入党员")
    remember(api, late_joiner)
    assert w.organiser.ok("GET", f"/study/sessions/{sid}")["attendees_fixed"] is True
    assert sid not in sessions_in_feed(late_joiner)  # not an attendee: not in their feed either
    assert sessions_in_feed(first)[sid]["version"] == 2  # now addressed to the fixed list by name
    assert [(c["op"], c["item"]["ref_id"]) for c in watcher.pull()] == [("upsert", sid)]
    # The fixed list is final: an edit keeps the audience, a session created inside its window starts fixed.
    w.organiser.ok("PATCH", f"/study/sessions/{sid}", json={"title": "党小组会（地点调整）"})
    assert sid not in sessions_in_feed(late_joiner) and sessions_in_feed(first)[sid]["version"] == 3
    now_open = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(minutes=10))
    assert now_open["attendees_fixed"] is True
    assert sessions_in_feed(late_joiner)[now_open["id"]]["version"] == 1


# -- notices ----------------------------------------------------------------------------------------

def test_a_decided_request_is_a_notice_for_the_requester_only(api):
    move_to(api, datetime(2026, 3, 2, 1, 0, tzinfo=UTC))
    w = study_world(api, members=3)
    first, second, third = w.members
    sid = new_session(api, w.organiser, w.branch["id"], start_in=timedelta(days=1), title="党课")["id"]
    watcher = Syncer(first)
    leave = first.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "leave", "reason": "出差"})
    makeup = second.ok("POST", "/study/requests", 201, json={"session_id": sid, "kind": "makeup",
                                                              "reason": "补学"})
    assert notices(first) == [] and watcher.pull() == []

    w.organiser.ok("POST", f"/study/requests/{leave['id']}/approve", json={"note": "同意"})
    w.organiser.ok("POST", f"/study/requests/{makeup['id']}/reject")
    mine = notices(first)
    assert [(n["ref_kind"], n["ref_id"], n["org_id"]) for n in mine] == [("study_request", leave["id"],
                                                                          w.branch["id"])]
    assert mine[0]["title"] == "请假申请已批准：党课" and "请假" in mine[0]["summary"]
    assert "同意" in mine[0]["summary"] and mine[0]["read"] is False
    theirs = notices(second)
    assert [(n["ref_id"], n["title"]) for n in theirs] == [(makeup["id"], "补学申请未批准：党课")]
    assert notices(third) == [] and notices(w.organiser) == [] and notices(w.outsider) == []
    assert [(c["op"], c["item"]["kind"], c["item"]["ref_id"]) for c in watcher.pull()] == [
        ("upsert", "notice", leave["id"])]
    # A second decision is refused and tells nobody again.
    assert w.organiser.post(f"/study/requests/{leave['id']}/reject").code == "request_not_pending"
    assert len(notices(first)) == 1 and watcher.pull() == []

    # A manual mark by an organiser tells the member too; marking the same status again does not.
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{third.id}", json={"status": "leave",
                                                                              "reason": "病假补登"})
    marked = notices(third)
    assert [(n["ref_kind"], n["ref_id"]) for n in marked] == [("study_session", sid)]
    assert "请假" in marked[0]["summary"] and "病假补登" in marked[0]["summary"]
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{third.id}", json={"status": "leave",
                                                                              "reason": "再次确认"})
    assert len(notices(third)) == 1
    assert count(api, "audit_log", {"action": "study.attendance.mark"}) == 2


def test_a_scan_tells_members_behind_and_the_organisers_of_a_branch_behind(api):
    move_to(api, datetime(2025, 11, 20, 4, 0, tzinfo=UTC))
    w = study_world(api, members=2)
    first, second = w.members
    committee = api.organiser(api.root_org_id, "组织委员")  # organiser of the root: of every branch
    remember(api, committee)
    for day in range(1, 6):  # the first member studies enough on their own
        first.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 60, "material": "党章",
                                                         "date": f"2025-11-{day:02d}"})
    watcher = Syncer(second)
    api.admin.ok("PUT", f"/orgs/{w.branch['id']}/settings", json={"member_warnings": True})  # off by default

    scan = api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11")
    assert scan["created"] > 0
    told = notices(second)
    assert [(n["ref_kind"], n["ref_id"], n["org_id"]) for n in told] == [("study_progress", "2025-11",
                                                                          w.branch["id"])]
    assert "个人自学" in told[0]["summary"] and "党小组会" in told[0]["summary"]
    assert [c["item"]["ref_kind"] for c in watcher.pull()] == ["study_progress"]
    # The first member is behind only on the group meeting they never attended.
    assert [n["summary"].count("；") for n in notices(first)] == [0]
    # The branch held no group meeting: its organiser and the root's organiser hear of it; the scanning
    # admin does not; the other branch hears nothing.
    branch_notice = notices(w.organiser, "study_warnings")
    assert [(n["ref_id"], n["org_id"]) for n in branch_notice] == [(w.branch["id"], w.branch["id"])]
    assert "第一支部" in branch_notice[0]["summary"] and "党小组会" in branch_notice[0]["summary"]
    assert [n["ref_id"] for n in notices(committee, "study_warnings")] == [w.branch["id"]]
    assert notices(committee, "study_progress") == []  # not a member of the scanned branch
    assert notices(api.admin) == []
    assert notices(w.outsider) == [] and notices(w.outsider_organiser) == []
    # The organiser is a member of the branch too: also told of their own shortfall.
    assert len(notices(w.organiser, "study_progress")) == 1

    # A re-scan creates nothing and tells nobody again.
    assert api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11")["created"] == 0
    assert len(notices(second)) == 1 and len(notices(w.organiser)) == 2 and len(notices(committee)) == 1
    assert watcher.pull() == []
    assert count(api, "study_warnings", {"notified": False}) == 0


# -- rectification files ----------------------------------------------------------------------------

def test_rectification_files_are_checked_and_readable_by_organisers_only(api):
    move_to(api, datetime(2025, 11, 20, 4, 0, tzinfo=UTC))
    w = study_world(api, members=1)
    member = w.members[0]
    api.admin.ok("PUT", f"/orgs/{w.branch['id']}/settings", json={"member_warnings": True})  # off by default
    api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11")
    warning = next(x for x in w.organiser.ok("GET", f"/warnings?org_id={w.branch['id']}&limit=100")["items"]
                   if x["member_id"] == member.id)
    wid = warning["id"]
    mine = upload(w.organiser, "支部已组织补学，附签到表。")
    not_mine = upload(member, "我的学习心得")
    elsewhere = upload(w.outsider_organiser, "第二支部材料")

    for bad in ([not_mine], [mine, elsewhere], ["0123456789abcdef01234567"]):
        refused = w.organiser.post(f"/warnings/{wid}/rectify", json={"note": "已整改", "file_ids": bad})
        assert refused.status == 422 and refused.code == "file_not_found", bad
    # Nothing of a refused step was kept: still open, no history entry, no reference, no audit entry.
    still = next(x for x in w.organiser.ok("GET", f"/warnings?org_id={w.branch['id']}&limit=100")["items"]
                 if x["id"] == wid)
    assert still["status"] == "open" and len(still["history"]) == 1
    assert count(api, "file_refs", {"ref_kind": "warning"}) == 0
    assert count(api, "audit_log", {"target_id": wid, "action": "study.warning.rectifying"}) == 0

    done = w.organiser.ok("POST", f"/warnings/{wid}/rectify", json={"note": "已整改", "file_ids": [mine]})
    assert done["status"] == "rectifying" and done["history"][-1]["file_ids"] == [mine]
    assert w.organiser.get(f"/files/{mine}").status == 200  # the uploader
    assert api.admin.get(f"/files/{mine}").content == "支部已组织补学，附签到表。".encode()  # an organiser above
    branch_admin = api.org_admin(w.branch["id"], "支部管理员")
    assert branch_admin.get(f"/files/{mine}").status == 200  # an organiser of the warning's org
    assert member.get(f"/files/{mine}").code == "file_not_found"  # the member the warning is about: no
    assert w.outsider_organiser.get(f"/files/{mine}").code == "file_not_found"
    assert member.get(f"/files/{mine}").status == 404
    # Closing needs no files and keeps them readable for organisers.
    api.admin.ok("POST", f"/warnings/{wid}/close", json={"note": "同意销号"})
    assert branch_admin.get(f"/files/{mine}").status == 200 and member.get(f"/files/{mine}").status == 404


def test_concurrent_scans_tell_each_person_once_and_a_missed_notice_is_sent_by_the_next_scan(api):
    move_to(api, datetime(2025, 11, 20, 4, 0, tzinfo=UTC))
    w = study_world(api, members=6)
    api.admin.ok("PUT", f"/orgs/{w.branch['id']}/settings", json={"member_warnings": True})  # off by default
    auth = {"Authorization": api.admin.http.headers["Authorization"]}
    path = f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11"
    answers = api.concurrently([lambda http: http.post(path, headers=auth) for _ in range(4)])
    assert [a.status for a in answers] == [200] * 4
    assert sum(a.json["created"] for a in answers) == count(api, "study_warnings", {}) > 0
    for client in (*w.members, w.organiser):
        assert len(notices(client, "study_progress")) == 1, client.member["name"]
    assert len(notices(w.organiser, "study_warnings")) == 1

    # A scan that stopped after creating a warning but before telling anyone: the next scan tells them.
    first = w.members[0]
    api.run(api.db["study_warnings"].update_many({"member_id": first.id}, {"$set": {"notified": False}}))
    assert api.admin.ok("POST", path)["created"] == 0
    assert len(notices(first, "study_progress")) == 2 and len(notices(w.members[1], "study_progress")) == 1

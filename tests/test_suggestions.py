"""意见建议 (API.md §11): members write, organisers of the author's subtree list and answer, the author is told;
an anonymous suggestion never shows its author to anyone but themselves, and branch A's organiser never reads
branch B's."""

from __future__ import annotations

import io
import json
import logging
import zipfile

from tests.builders import break_audit, count, mend_audit, study_world, sync_all


def _notices(client) -> list[dict]:
    changes, _ = sync_all(client)
    return [c["item"] for c in changes if c["op"] == "upsert" and c["item"]["kind"] == "notice"]


def _export(client) -> dict[str, list]:
    response = client.get("/me/export")
    assert response.status == 200, response
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: json.loads(archive.read(name)) for name in archive.namelist()}


def test_an_anonymous_suggestion_is_answered_without_anyone_learning_its_author(api, caplog):
    caplog.set_level(logging.INFO)  # everything the server logs in production (the driver logs commands below)
    w = study_world(api, members=2)
    author, other = w.members
    wrote = author.ok("POST", "/suggestions", 201,
                      json={"text": "希望学习资料能离线阅读", "category": "app", "anonymous": True})
    assert wrote["status"] == "open"
    sid = wrote["id"]
    named = other.ok("POST", "/suggestions", 201, json={"text": "会议通知请提前三天", "category": "work"})

    # The organiser's list: the text, never the author of the anonymous one; the named one shows its author.
    listed = {s["id"]: s for s in w.organiser.ok("GET", "/suggestions")["items"]}
    assert set(listed) == {sid, named["id"]}
    assert listed[sid]["anonymous"] is True and listed[sid]["author"] is None
    assert listed[named["id"]]["author"] == {"member_id": other.id, "name": other.member["name"]}
    raw = w.organiser.get("/suggestions").content.decode()
    assert author.id not in raw and author.member["name"] not in raw
    # Stored: the suggestion holds no trace of its author; only the private link does.
    stored = api.run(api.db.suggestions.find_one({"_id": sid}))
    assert author.id not in json.dumps(stored, default=str)

    answered = w.organiser.ok("POST", f"/suggestions/{sid}/reply", json={"text": "下个版本支持离线阅读"})
    assert answered == {"status": "answered"}
    assert w.organiser.post(f"/suggestions/{sid}/reply", json={"text": "again"}).code == "suggestion_answered"
    # The author hears of it in their feed; nobody else does.
    told = [n for n in _notices(author) if n["ref_id"] == sid]
    assert len(told) == 1 and "离线阅读" in told[0]["summary"]
    assert not [n for n in _notices(other) if n["ref_id"] == sid]
    # Their own list shows the answer; another member's list does not hold it.
    mine = author.ok("GET", "/suggestions")["items"]
    assert [s["id"] for s in mine] == [sid] and mine[0]["answer"]["text"] == "下个版本支持离线阅读"
    assert [s["id"] for s in other.ok("GET", "/suggestions")["items"]] == [named["id"]]
    # The one suggestion the reply notice opens: the author and the organiser read the same thing, without the
    # author; another member finds nothing there.
    one = author.ok("GET", f"/suggestions/{sid}")
    assert one == {**listed[sid], "status": "answered", "answer": mine[0]["answer"]}
    assert w.organiser.ok("GET", f"/suggestions/{sid}") == one and one["author"] is None
    assert author.id not in w.organiser.get(f"/suggestions/{sid}").content.decode()
    refused = other.get(f"/suggestions/{sid}")
    assert (refused.status, refused.code) == (404, "suggestion_not_found")
    # The audit entry of the reply names the suggestion, not its author.
    entries = api.admin.ok("GET", f"/audit?target_id={sid}")["items"]
    assert [e["action"] for e in entries] == ["suggestion.reply"]
    assert author.id not in json.dumps(entries)
    stored_entries = api.run(api.db.audit_log.find({"action": {"$regex": "^suggestion"}}).to_list())
    assert len(stored_entries) == 1 and author.id not in json.dumps(stored_entries, default=str)
    # The author's export holds it; the organiser's and the other member's do not.
    assert [s["id"] for s in _export(author)["suggestions.json"]] == [sid]
    assert sid not in json.dumps(_export(other)) and sid not in json.dumps(_export(w.organiser))
    # Nor do the server's logs, at any level.
    assert caplog.records and author.id not in caplog.text


def test_organisers_read_and_answer_only_their_subtree(api):
    w = study_world(api, members=1)
    member = w.members[0]
    ours = member.ok("POST", "/suggestions", 201, json={"text": "支部活动室需要空调", "category": "work"})["id"]
    theirs = w.outsider.ok("POST", "/suggestions", 201,
                           json={"text": "二支部的意见", "category": "work", "anonymous": True})["id"]
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions")["items"]] == [ours]
    assert [s["id"] for s in w.outsider_organiser.ok("GET", "/suggestions")["items"]] == [theirs]
    # Branch A's organiser: B's list is not theirs, B's suggestion does not exist for them.
    assert w.organiser.get(f"/suggestions?org_id={w.other_branch['id']}").code == "not_found"
    refused = w.organiser.post(f"/suggestions/{theirs}/reply", json={"text": "越权答复"})
    assert refused.status == 404 and refused.code == "suggestion_not_found"
    assert w.organiser.post("/suggestions/nope/reply", json={"text": "x"}).code == "suggestion_not_found"
    assert w.organiser.get(f"/suggestions/{theirs}").code == "suggestion_not_found"  # nor read it
    assert w.organiser.get("/suggestions/nope").code == "suggestion_not_found"
    assert w.outsider_organiser.ok("GET", f"/suggestions/{theirs}")["author"] is None
    assert api.admin.ok("GET", f"/suggestions/{ours}")["author"]["member_id"] == member.id  # named: shown
    # The author may not answer their own; a member asking for a subtree is refused.
    assert member.post(f"/suggestions/{ours}/reply", json={"text": "自问自答"}).code == "forbidden"
    assert member.get(f"/suggestions?org_id={w.branch['id']}").code == "forbidden"
    # Status filter; the root admin sees every subtree.
    w.organiser.ok("POST", f"/suggestions/{ours}/reply", json={"text": "已安排"})
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions?status=open")["items"]] == []
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions?status=answered")["items"]] == [ours]
    assert w.organiser.get("/suggestions?status=bogus").code == "invalid_request"
    # Category filter, with and without the status.
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions?category=work")["items"]] == [ours]
    assert w.organiser.ok("GET", "/suggestions?category=app")["items"] == []
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions?category=work&status=answered")["items"]] == [ours]
    assert w.organiser.get("/suggestions?category=bogus").code == "invalid_request"
    assert {s["id"] for s in api.admin.ok("GET", "/suggestions")["items"]} == {ours, theirs}
    # An organiser's own suggestions, with ?mine=true.
    own = w.organiser.ok("POST", "/suggestions", 201, json={"text": "书记的建议", "category": "app"})["id"]
    assert [s["id"] for s in w.organiser.ok("GET", "/suggestions?mine=true")["items"]] == [own]


def test_suggestion_bodies_are_bounded_and_writing_is_rate_limited(api):
    w = study_world(api, members=1)
    member = w.members[0]
    for bad in ({"text": "", "category": "app"}, {"text": "x" * 2001, "category": "app"},
                {"text": "x", "category": "other"}, {"text": "x", "category": "app", "author": "me"}):
        assert member.post("/suggestions", json=bad).code == "invalid_request", bad
    assert api.anonymous().post("/suggestions", json={"text": "x", "category": "app"}).status == 401
    for i in range(20):
        member.ok("POST", "/suggestions", 201, json={"text": f"建议{i}", "category": "app"})
    limited = member.post("/suggestions", json={"text": "第二十一条", "category": "app"})
    assert limited.status == 429 and limited.code == "rate_limited" and int(limited.headers["Retry-After"]) > 0
    assert count(api, "suggestions", {}) == 20


def test_concurrent_answers_answer_once_and_tell_the_author_once(api):
    w = study_world(api, members=1)
    author = w.members[0]
    sid = author.ok("POST", "/suggestions", 201, json={"text": "食堂意见", "category": "work", "anonymous": True})["id"]
    headers = {"Authorization": f"Bearer {w.organiser.token}"}
    answers = api.concurrently([lambda http, i=i: http.post(f"/suggestions/{sid}/reply", headers=headers,
                                                            json={"text": f"答复{i}"}) for i in range(6)])
    assert sorted(a.status for a in answers) == [200] + [409] * 5
    assert {a.code for a in answers if a.status == 409} == {"suggestion_answered"}
    told = [n for n in _notices(author) if n["ref_id"] == sid]
    assert len(told) == 1 and count(api, "audit_log", {"target_id": sid}) == 1
    stored = api.run(api.db.suggestions.find_one({"_id": sid}))
    assert told[0]["summary"] == stored["answer"]["text"]


def test_a_failed_answer_leaves_the_suggestion_open_and_tells_nobody(api):
    w = study_world(api, members=1)
    author = w.members[0]
    sid = author.ok("POST", "/suggestions", 201, json={"text": "停车位紧张", "category": "work"})["id"]
    break_audit(api, "suggestion.reply")
    assert w.organiser.post(f"/suggestions/{sid}/reply", json={"text": "已协调"}).status == 500
    assert api.run(api.db.suggestions.find_one({"_id": sid}))["status"] == "open"
    assert not [n for n in _notices(author) if n["ref_id"] == sid]
    mend_audit(api)
    w.organiser.ok("POST", f"/suggestions/{sid}/reply", json={"text": "已协调"})
    assert len([n for n in _notices(author) if n["ref_id"] == sid]) == 1

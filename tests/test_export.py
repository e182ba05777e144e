"""GET /me/export (API.md §11): a member who did a bit of everything gets all of it and nothing of anyone
else's; every collection that holds a member's id is either exported or listed with the reason it is not;
the zip is streamed and the export is rate-limited."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

from server import personal_export
from tests.builders import (
    FIX,
    HERE,
    activity_checkin,
    advance,
    checkin,
    new_session,
    publish,
    published,
    qr_token,
    study_world,
    text_file,
)


def _unzip(response) -> dict[str, object]:
    assert response.status == 200, response
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        return {name: json.loads(archive.read(name)) for name in archive.namelist()}


def _bind_wechat(api, member, openid: str) -> None:
    code = api.admin.ok("POST", f"/members/{member.id}/invite", 201)["invite_code"]
    anon = api.anonymous()
    started = anon.ok("POST", "/auth/wechat", json={"code": f"ok:{openid}"})
    anon.ok("POST", "/auth/bind", json={"bind_token": started["bind_token"], "invite_code": code})


def _a_bit_of_everything(api, w, member, tag: str) -> None:
    """What a member does in a month: as `member`, with `tag` in what they write."""
    org = w.branch["id"]
    _bind_wechat(api, member, f"openid-{ord(tag)}")
    # A geo check-in (the location is kept on the record), a leave request decided, a mark by the organiser.
    geo = new_session(api, w.organiser, org, start_in=timedelta(minutes=10), methods=["qr", "geo"], location=HERE)
    assert checkin(member, geo["id"], qr_token(w.organiser, geo["id"]), location=FIX).status == 201
    later = new_session(api, w.organiser, org, start_in=timedelta(days=3), title="党课")
    request = member.ok("POST", "/study/requests", 201,
                        json={"session_id": later["id"], "kind": "leave", "reason": f"出差{tag}"})
    w.organiser.ok("POST", f"/study/requests/{request['id']}/approve", json={"note": "同意"})
    marked = new_session(api, w.organiser, org, start_in=timedelta(minutes=5), title="支部会")
    w.organiser.ok("PUT", f"/study/sessions/{marked['id']}/attendance/{member.id}",
                   json={"status": "present", "reason": "签到设备故障，现场确认"})
    today = api.clock.now().astimezone().date().isoformat()
    member.ok("POST", "/study/self-study", 201, headers={"Idempotency-Key": f"study-{ord(tag)}"},
              json={"track": "self_study", "minutes": 30, "material": f"党章{tag}", "date": today})
    # An announcement read and acknowledged; a suggestion; a file.
    aid = publish(api, w.organiser, org, f"通知{tag}", must_read=True)
    member.ok("POST", f"/announcements/{aid}/read", 204)
    member.ok("POST", f"/announcements/{aid}/ack", 204)
    member.ok("POST", "/suggestions", 201, json={"text": f"建议{tag}", "category": "app", "anonymous": True})
    text_file(member, f"心得{tag}".encode())
    # Asked to be told when an activity's sign-up opens: beyond the days the test moves the clock on, so the
    # reminder loop leaves it waiting whenever it runs.
    later_act = published(api, w.organiser, org, opens=timedelta(days=10), closes=timedelta(days=11),
                          starts=timedelta(days=12))
    member.ok("PUT", f"/activities/{later_act['id']}/signup-reminder")


def test_the_export_holds_everything_about_the_member_and_nothing_of_anyone_else(api):
    w = study_world(api, members=2)
    member, other = w.members
    _a_bit_of_everything(api, w, member, "甲")
    _a_bit_of_everything(api, w, other, "乙")
    # Sign-ups, a check-in and feedback at an activity both attended.
    act = published(api, w.organiser, w.branch["id"])
    for person in (member, other):
        person.ok("POST", f"/activities/{act['id']}/signups", 201)
    advance(api, w.organiser, member, other, days=2, minutes=1)
    for person in (member, other):
        activity_checkin(w.organiser, person, f"/activities/{act['id']}")
    advance(api, w.organiser, member, other, hours=3)
    member.ok("POST", f"/activities/{act['id']}/feedback", 201, json={"rating": 5, "comment": "很有收获"})
    other.ok("POST", f"/activities/{act['id']}/feedback", 201, json={"rating": 4})
    # A warning about the member (member warnings turned on), and its notice.
    api.admin.ok("PUT", f"/orgs/{w.branch['id']}/settings", json={"member_warnings": True})
    period = api.clock.now().astimezone().strftime("%Y-%m")
    api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period={period}")
    # Notifications (API.md §9) keep their records in these collections; a grant and a preference of each.
    for person in (member, other):
        api.run(api.db.notification_grants.insert_one({"_id": f"{person.id}:tpl-1", "member_id": person.id,
                                                       "template_id": "tpl-1", "grants": 2}))
        api.run(api.db.notification_preferences.insert_one({"_id": person.id, "muted": ["activity_reminder"]}))

    files = _unzip(member.get("/me/export"))
    assert set(files) == {*personal_export.files_in_export(), "manifest.json"}
    manifest = files["manifest.json"]
    assert manifest["member_id"] == member.id and set(manifest["not_exported"]) == set(personal_export.NOT_EXPORTED)
    assert all(manifest["files"][name] == len(files[name]) for name in personal_export.files_in_export())
    profile = files["profile.json"][0]
    assert profile["id"] == member.id and profile["phone_masked"].count("*") == 4 and "phone" not in profile
    assert "password_hash" not in json.dumps(files)
    assert [r["unionid"] for r in files["wechat.json"]] == [f"u-openid-{ord('甲')}"]
    located = [r for r in files["attendance.json"] if r.get("location")]
    assert len(located) == 1 and located[0]["location"]["lat"] == FIX["lat"]
    assert {r["status"] for r in files["attendance.json"]} == {"present", "leave"}
    assert [r["reason"] for r in files["requests.json"]] == ["出差甲"]
    assert files["requests.json"][0]["status"] == "approved" and files["requests.json"][0]["note"] == "同意"
    assert [r["material"] for r in files["self_study.json"]] == ["党章甲"]
    assert [r["rating"] for r in files["feedback.json"]] == [5]
    assert [r["checked_in_at"] is not None for r in files["signups.json"]] == [True]
    assert len(files["reads_and_acks.json"]) == 1 and files["reads_and_acks.json"][0]["acked_at"]
    assert [r["text"] for r in files["suggestions.json"]] == ["建议甲"]
    assert [r["name"] for r in files["files.json"]] and files["warnings.json"]
    assert any(n["ref_kind"] == "study_progress" for n in files["notices.json"])
    assert {e["action"] for e in files["audit.json"]} >= {"member.create", "member.invite", "study.attendance.mark",
                                                          "study.request.approved"}
    assert all(e["actor_id"] is None for e in files["audit.json"])  # who among the organisers is not in it
    assert [r["grants"] for r in files["notification_grants.json"]] == [2]
    assert [r["state"] for r in files["signup_reminders.json"]] == ["waiting"]
    assert [r["muted"] for r in files["notification_preferences.json"]] == [["activity_reminder"]]
    # their leave request was decided: that notification is theirs
    assert {d["event"] for d in files["notification_deliveries.json"]} >= {"request_decided"}
    assert {d["member_id"] for d in files["notification_deliveries.json"]} == {member.id}
    # Nothing of anyone else's: not the other member, not the organiser who marked or decided.
    text = json.dumps(files, ensure_ascii=False)
    for stranger in (other, w.organiser):
        assert stranger.id not in text and stranger.member["name"] not in text
    assert "乙" not in text

    # Completeness: every document anywhere that holds the member's id is in the export, or its collection is
    # listed as not exported with a reason.
    exported_ids = {name: {r["id"] for r in records} for name, records in files.items() if isinstance(records, list)}
    names = api.run(api.db.list_collection_names())
    assert {"study_attendance", "suggestion_authors", "notification_grants", "rate_limits"} <= set(names)
    for collection in names:
        for doc in api.run(api.db[collection].find().to_list()):
            if member.id not in json.dumps(doc, default=str):
                continue
            if collection in personal_export.NOT_EXPORTED:
                continue
            if collection in personal_export.LINKED:
                assert doc["_id"] in exported_ids[personal_export.SUGGESTIONS_FILE], (collection, doc)
                continue
            assert collection in personal_export.EXPORTED, f"{collection} holds a member id and is not exported"
            file = personal_export.EXPORTED[collection].file
            assert doc["_id"] in exported_ids[file], (collection, doc)


def test_every_collection_the_server_declares_is_either_exported_or_explained(api):
    """The tables name real collections: each one that holds a member field is covered (the test above checks
    the documents a member's actions leave; this one that no table entry names a collection nobody writes)."""
    from server.db import _INDEXES, declare_all

    declare_all()
    covered = set(personal_export.EXPORTED) | set(personal_export.LINKED) | set(personal_export.NOT_EXPORTED)
    member_keyed = {c for c, models in _INDEXES.items()
                    if any(k in ("member_id", "members", "attendees", "target_id", "uploader_id")
                           for m in models for k in m.document["key"])}
    assert member_keyed <= covered, member_keyed - covered
    assert not set(personal_export.EXPORTED) & set(personal_export.NOT_EXPORTED)
    names = personal_export.files_in_export()
    assert len(set(names)) == len(names)  # one file per kind of record
    assert all(reason.strip() for reason in personal_export.NOT_EXPORTED.values())


def test_the_export_is_streamed_rate_limited_and_for_signed_in_members_only(api):
    w = study_world(api, members=1)
    member = w.members[0]
    assert api.anonymous().get("/me/export").code == "unauthenticated"
    first = member.get("/me/export")
    assert first.status == 200 and "content-length" not in first.headers
    assert first.headers["transfer-encoding"] == "chunked"  # sent as it is written
    assert "attachment" in first.headers["content-disposition"]
    for _ in range(personal_export.EXPORT_LIMIT - 1):
        assert member.get("/me/export").status == 200
    limited = member.get("/me/export")
    assert limited.status == 429 and limited.code == "rate_limited" and int(limited.headers["Retry-After"]) > 0
    assert w.outsider.get("/me/export").status == 200  # counted per member
    advance(api, member, hours=1, minutes=1)
    assert member.get("/me/export").status == 200

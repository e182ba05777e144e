"""The audit log (API.md §11): each organiser change to someone else's record leaves an entry with before and
after, phones masked; admins page through their subtree with filters; nothing changes an entry."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from server.app import ROUTES
from tests.builders import advance, iso, study_world

ROOT = Path(__file__).resolve().parent.parent


def _entries(client, **filters) -> list[dict]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    return client.ok("GET", f"/audit?limit=100&{query}")["items"]


def _one(entries: list[dict], action: str) -> dict:
    found = [e for e in entries if e["action"] == action]
    assert len(found) == 1, (action, [e["action"] for e in entries])
    return found[0]


def test_each_change_to_someone_elses_record_is_audited_with_before_and_after(api):
    w = study_world(api, members=2)
    member, other = w.members
    branch = w.branch["id"]
    branch_admin = api.org_admin(branch, "支部管理员")

    # An organiser edits a member's record, phone included: both phones are masked in the entry.
    w.organiser.ok("PATCH", f"/members/{member.id}", json={"name": "王小明", "phone": "13812345678"})
    edit = _one(_entries(branch_admin, target_id=member.id), "member.update")
    assert edit["actor_id"] == w.organiser.id and edit["org_id"] == branch and edit["target_kind"] == "member"
    assert edit["before"]["name"] == member.member["name"] and edit["after"] == {"name": "王小明",
                                                                                 "phone": "138****5678"}
    assert "*" in edit["before"]["phone"] and "13812345678" not in str(_entries(branch_admin))
    # Roles, a password reset, an attendance mark.
    branch_admin.ok("PUT", f"/members/{other.id}/roles", json={"roles": [{"role": "organiser", "org_id": branch}]})
    roles = _one(_entries(branch_admin, target_id=other.id), "member.roles")
    assert roles["before"] == [] and roles["after"] == [{"role": "organiser", "org_id": branch}]
    branch_admin.ok("PUT", f"/members/{member.id}/password", 204, json={"password": "a-new-password-1"})
    reset = _one(_entries(branch_admin, target_id=member.id), "member.password")
    assert reset["before"] == {"password_set": False} and reset["after"] == {"password_set": True}
    start = api.clock.now() + timedelta(minutes=5)
    sid = w.organiser.ok("POST", "/study/sessions", 201, json={
        "org_id": branch, "track": "group_meeting", "title": "党小组会", "starts_at": iso(start),
        "ends_at": iso(start + timedelta(hours=1))})["id"]
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{member.id}", json={"status": "leave", "reason": "病假"})
    w.organiser.ok("PUT", f"/study/sessions/{sid}/attendance/{member.id}", json={"status": "present", "reason": "补签"})
    marks = [e for e in _entries(branch_admin, target_id=member.id) if e["action"] == "study.attendance.mark"]
    assert [(e["before"], e["after"]) for e in marks] == [("leave", "present"), (None, "leave")]  # newest first
    assert marks[0]["details"] == {"session_id": sid} and marks[0]["reason"] == "补签"
    # Warning steps: created by a scan, rectified, closed.
    api.admin.ok("PUT", f"/orgs/{branch}/settings", json={"member_warnings": True})
    api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period={api.clock.now().astimezone().strftime('%Y-%m')}")
    wid = next(x["id"] for x in w.organiser.ok("GET", f"/warnings?org_id={branch}&limit=100")["items"]
               if x["member_id"] == member.id)
    w.organiser.ok("POST", f"/warnings/{wid}/rectify", json={"note": "已补学"})
    api.admin.ok("POST", f"/warnings/{wid}/close", json={"note": "同意销号"})
    steps = _entries(branch_admin, target_id=wid)
    assert [(e["action"], e["before"], e["after"]) for e in steps] == [
        ("study.warning.closed", {"status": "rectifying"}, {"status": "closed"}),
        ("study.warning.rectifying", {"status": "open"}, {"status": "rectifying"}),
        ("study.warning.create", None, {"status": "open"})]
    # An import that creates one member and updates another.
    csv_body = f"name,phone,gender,birth_date,party_status,tags\n新人,13600000011,female,1995-05-05,full,\n" \
               f"改名,{api.run(api.db.members.find_one({'_id': other.id}))['phone']},male,1990-01-01,full,\n"
    result = w.organiser.ok("POST", f"/orgs/{branch}/members/import", content=csv_body.encode(),
                            headers={"Content-Type": "text/csv"})
    assert result["created"] == 1 and result["updated"] == 1
    imports = _entries(branch_admin, actor_id=w.organiser.id)
    created = _one(imports, "member.import.create")
    assert created["after"]["name"] == "新人" and created["after"]["phone"] == "136****0011"
    updated = _one(_entries(branch_admin, target_id=other.id), "member.import.update")
    assert updated["before"]["name"] == other.member["name"] and updated["after"]["name"] == "改名"
    # Deactivation.
    w.organiser.ok("PATCH", f"/members/{member.id}", json={"active": False})
    off = _one(_entries(branch_admin, target_id=member.id), "member.deactivate")
    assert off["before"] == {"active": True} and off["after"] == {"active": False}


def test_admins_read_their_subtree_with_filters_and_pages(api):
    w = study_world(api, members=3)
    branch, other_branch = w.branch["id"], w.other_branch["id"]
    for i, person in enumerate(w.members):
        w.organiser.ok("PATCH", f"/members/{person.id}", json={"name": f"改名{i}"})
        advance(api, minutes=10)
    w.outsider_organiser.ok("PATCH", f"/members/{w.outsider.id}", json={"name": "外支部改名"})
    branch_admin = api.org_admin(branch, "支部管理员")

    ours = _entries(branch_admin, actor_id=w.organiser.id)
    assert [e["target_id"] for e in ours] == [p.id for p in reversed(w.members)]  # newest first
    assert all(e["org_id"] == branch for e in _entries(branch_admin))
    assert w.outsider.id not in {e["target_id"] for e in _entries(branch_admin)}
    assert w.outsider.id in {e["target_id"] for e in _entries(api.admin)}  # the root admin sees both branches
    # Paged, with time bounds.
    first = branch_admin.ok("GET", f"/audit?actor_id={w.organiser.id}&limit=2")
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = branch_admin.ok("GET", f"/audit?actor_id={w.organiser.id}&limit=2&cursor={first['next_cursor']}")
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in ours]
    middle = ours[1]["at"]
    since = _entries(branch_admin, actor_id=w.organiser.id, **{"from": middle.replace("+00:00", "Z")})
    assert [e["id"] for e in since] == [e["id"] for e in ours[:2]]
    until = _entries(branch_admin, actor_id=w.organiser.id, to=middle)
    assert [e["id"] for e in until] == [ours[2]["id"]]
    # Refusals: organisers and members may not read it; another branch's admin sees nothing of ours.
    assert w.organiser.get("/audit").code == "forbidden"
    assert w.members[0].get("/audit").code == "forbidden"
    assert api.anonymous().get("/audit").code == "unauthenticated"
    assert branch_admin.get(f"/audit?org_id={other_branch}").code == "not_found"
    assert branch_admin.get("/audit?from=yesterday").code == "invalid_request"
    other_admin = api.org_admin(other_branch, "二支部管理员")
    assert w.members[0].id not in {e["target_id"] for e in _entries(other_admin)}


def test_no_route_and_no_code_path_changes_an_entry(api):
    # No route: /audit answers GET only, and no other handler module names the collection.
    audit_routes = [handler for path, handler in ROUTES if "audit" in path]
    assert len(audit_routes) == 1
    handler = audit_routes[0]
    assert [m for m in ("post", "put", "patch", "delete") if m in handler.__dict__] == []
    admin = api.admin
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert admin.request(method, "/audit", json={}).status == 405
    # No code path: the collection is named only through server.audit, which inserts and reads.
    used: set[str] = set()
    for path in [*ROOT.joinpath("server").rglob("*.py"), *ROOT.joinpath("handlers").rglob("*.py")]:
        source = path.read_text()
        if path.name != "audit.py" or path.parent.name != "server":
            assert "audit_log" not in source, path
            used |= set(re.findall(r"\[audit\.COLLECTION\]\s*\.\s*(\w+)", source))
        else:
            used |= set(re.findall(r"\[COLLECTION\]\s*\.\s*(\w+)", source))
            assert not re.search(r"\b(update|delete|replace|find_one_and|drop|bulk_write)\w*\(", source)
    assert used <= {"insert_one", "insert_many", "find", "count_documents"}, used
    assert "insert_one" in used


def test_entries_written_before_before_and_after_had_fields_are_read_as_they_are(api):
    # The shape the previous version wrote (everything in `changes`); the log is never rewritten.
    org_path = [api.root_org_id]
    api.run(api.db.audit_log.insert_one({"_id": "legacy-1", "at": api.clock.now(), "actor_id": api.admin.id,
                                         "action": "member.update", "target_kind": "member", "target_id": "m1",
                                         "org_path": org_path, "reason": None,
                                         "changes": {"before": {"name": "甲"}, "after": {"name": "乙"}}}))
    api.run(api.db.audit_log.insert_one({"_id": "legacy-2", "at": api.clock.now(), "actor_id": api.admin.id,
                                         "action": "study.session.update", "target_kind": "study_session",
                                         "target_id": "s1", "org_path": org_path, "reason": None,
                                         "changes": {"fields": ["title"]}}))
    entries = {e["id"]: e for e in _entries(api.admin)}
    assert (entries["legacy-1"]["before"], entries["legacy-1"]["after"]) == ({"name": "甲"}, {"name": "乙"})
    assert entries["legacy-2"]["details"] == {"fields": ["title"]} and entries["legacy-2"]["before"] is None

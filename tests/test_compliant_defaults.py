"""Defaults that follow the national rules on government apps (API.md §11): the shipped scheme counts sessions and
self-study entries, not minutes; member-level warnings are off unless an admin turns them on for the org; nothing
in the API ranks members."""

from __future__ import annotations

import re

from tests.builders import study_world


def _tracks(progress: dict) -> dict:
    return {t["key"]: t for t in progress["tracks"]}


def test_the_default_scheme_counts_entries_and_shows_minutes_as_the_members_own_record(api):
    w = study_world(api, members=1)
    member = w.members[0]
    scheme = member.ok("GET", f"/orgs/{w.branch['id']}/study-scheme")
    assert scheme["is_default"] and all(t["min_minutes"] == 0 for t in scheme["tracks"])
    today = api.clock.now().astimezone(api.ctx.settings.tz).date()
    for _ in range(5):  # five short entries meet the month's self-study track
        member.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 3, "material": "党章",
                                                         "date": today.isoformat()})
    mine = _tracks(member.ok("GET", "/me/study/progress"))["self_study"]
    assert mine["complete"] and mine["done_count"] == 5 and mine["required_minutes"] == 0
    assert mine["done_minutes"] == 15  # still logged and shown to the member
    assert [e["minutes"] for e in member.ok("GET", "/study/self-study")["items"]] == [3] * 5


def test_member_warnings_are_off_until_an_admin_turns_them_on_for_the_org(api):
    w = study_world(api, members=2)
    branch = w.branch["id"]
    period = api.clock.now().astimezone(api.ctx.settings.tz).strftime("%Y-%m")
    settings = w.members[0].ok("GET", f"/orgs/{branch}/settings")
    assert settings == {"org_id": branch, "member_warnings": False, "own": {}}

    api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period={period}")
    listed = w.organiser.ok("GET", f"/warnings?org_id={branch}&limit=100")["items"]
    assert listed and all(x["member_id"] is None for x in listed)  # the branch, never a member

    # Only an admin of the org turns them on; organisers, members and other branches' admins may not.
    assert w.organiser.put(f"/orgs/{branch}/settings", json={"member_warnings": True}).code == "forbidden"
    assert w.members[0].put(f"/orgs/{branch}/settings", json={"member_warnings": True}).code == "forbidden"
    other_admin = api.org_admin(w.other_branch["id"], "二支部管理员")
    assert other_admin.put(f"/orgs/{branch}/settings", json={"member_warnings": True}).code == "not_found"
    assert api.admin.put(f"/orgs/{branch}/settings", json={"member_warnings": "yes"}).code == "invalid_request"
    assert api.admin.put(f"/orgs/{branch}/settings", json={"rankings": True}).code == "invalid_request"
    branch_admin = api.org_admin(branch, "支部管理员")
    turned = branch_admin.ok("PUT", f"/orgs/{branch}/settings", json={"member_warnings": True})
    assert turned["member_warnings"] is True and turned["own"] == {"member_warnings": True}
    entry = branch_admin.ok("GET", f"/audit?target_id={branch}")["items"][0]
    assert entry["action"] == "org.settings" and entry["before"] == {"member_warnings": None}
    # A group below inherits the branch's choice unless its own says otherwise.
    group = api.org("第一小组", "group", branch)
    assert api.admin.ok("GET", f"/orgs/{group['id']}/settings")["member_warnings"] is True
    api.admin.ok("PUT", f"/orgs/{group['id']}/settings", json={"member_warnings": False})
    assert api.admin.ok("GET", f"/orgs/{group['id']}/settings")["member_warnings"] is False

    created = api.admin.ok("POST", f"/orgs/{branch}/warnings/scan?period={period}")["created"]
    members_warned = {x["member_id"] for x in w.organiser.ok("GET", f"/warnings?org_id={branch}&limit=100")["items"]}
    assert created > 0 and {m.id for m in w.members} <= members_warned


def test_nothing_in_the_api_ranks_members(api):
    # No field or parameter of the contract is a rank, a score or points.
    doc = api.anonymous().ok("GET", "/openapi.json")
    names: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            names.update(p["name"] for p in node.get("parameters", []) if isinstance(p, dict) and "name" in p)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert names and not [n for n in names if re.search(r"rank|score|point|leader|top", n, re.I)]
    # The compliance report lists members in a fixed order (their ids), whatever they achieved.
    w = study_world(api, members=4)
    today = api.clock.now().astimezone(api.ctx.settings.tz).date().isoformat()
    for entries, member in zip((0, 5, 1, 3), w.members, strict=True):
        for _ in range(entries):
            member.ok("POST", "/study/self-study", 201, json={"track": "self_study", "minutes": 10,
                                                             "material": "党章", "date": today})
    report = w.organiser.ok("GET", f"/orgs/{w.branch['id']}/study/compliance")
    ids = [m["member_id"] for m in report["members"]]
    assert ids == sorted(ids) and len(ids) == 5

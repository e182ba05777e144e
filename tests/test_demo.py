"""`python -m server demo` (API.md §12), run for real: the command fills a fresh database, `python -m server`
serves it, and what a new user would look at is there through HTTP for the printed admin and organisers;
an organiser sees only their branch; a second run refuses and changes nothing.

Both commands run as processes of their own on the session's database server, with a database name of
their own (as `start_server` in conftest.py does), so the suite starts no other database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from pymongo import MongoClient

from server.launcher import ServerProcess
from tests.builders import parse
from tests.conftest import PROCESS_SECRET, ROOT, Client

# "  组织者 organiser  周建华  办公室党支部  手机号 phone 158...  密码 password ..." → name, org, phone, password
ACCOUNT = re.compile(r"^\s+(?:管理员 admin|组织者 organiser)\s+(\S+)\s+(\S+)\s+"
                     r"手机号 phone (\d+)\s+密码 password (\S+)$", re.MULTILINE)
PROGRAMMES = {"unity", "workers", "youth", "women", "culture"}


def environment(db_name: str) -> dict[str, str]:
    """No bootstrap administrator (it would make the database non-empty) and this test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHLINE_")}
    return {**env, "BRANCHLINE_DB_NAME": db_name, "BRANCHLINE_JWT_SECRET": PROCESS_SECRET,
            "BRANCHLINE_LOG_LEVEL": "WARNING"}


def demo(mongo_uri: str, db_name: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "demo", "--mongo-uri", mongo_uri, *extra], cwd=ROOT,
                          env=environment(db_name), capture_output=True, text=True, timeout=300)


class Served(ServerProcess):
    """`python -m server` on the demo's database, and sign-in with the printed passwords."""

    def __init__(self, mongo_uri: str | None, db_name: str, data_dir) -> None:
        database = ["--mongo-uri", mongo_uri] if mongo_uri else []  # else the embedded one under data_dir
        super().__init__([*database, "--data-dir", str(data_dir)], env=environment(db_name))

    def sign_in(self, phone: str, password: str) -> Client:
        body = Client(self.base_url).ok("POST", "/auth/password", json={"phone": phone, "password": password})
        return Client(self.base_url, body["access_token"], body["member"])


@pytest.fixture
def demo_db(mongo_uri):
    db_name = f"demo_{uuid.uuid4().hex[:12]}"
    yield db_name
    with MongoClient(mongo_uri) as client:
        client.drop_database(db_name)


def counts(mongo_uri: str, db_name: str) -> dict[str, int]:
    with MongoClient(mongo_uri) as client:
        db = client[db_name]
        return {name: db[name].count_documents({}) for name in sorted(db.list_collection_names())}


def everything(client: Client, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        page = client.ok("GET", path, params={**params, "limit": 100, **({"cursor": cursor} if cursor else {})})
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def test_a_short_password_is_refused_before_anything_starts(mongo_uri, demo_db):
    run = demo(mongo_uri, demo_db, "--password", "short")
    assert run.returncode == 2 and "--password" in run.stderr
    assert counts(mongo_uri, demo_db) == {}


def test_demo_fills_an_empty_database_and_refuses_a_second_time(mongo_uri, demo_db, tmp_path):
    run = demo(mongo_uri, demo_db)
    assert run.returncode == 0, run.stderr
    assert "http://127.0.0.1:8000/console/" in run.stdout
    accounts = {name: (org, phone, password) for name, org, phone, password in ACCOUNT.findall(run.stdout)}
    assert len(accounts) == 6, run.stdout  # the administrator and five branch secretaries
    assert len({password for _, _, password in accounts.values()}) == 6  # a new one each
    assert len(re.findall(r"\b[A-Z2-9]{8}\b", run.stdout.split("Unused invite codes")[1])) >= 3

    server = Served(mongo_uri, demo_db, tmp_path)
    try:
        admin_name = next(name for name, (org, _, _) in accounts.items() if org == "机关党委")
        admin = server.sign_in(*accounts[admin_name][1:])
        office = server.sign_in(*accounts["周建华"][1:])
        finance = server.sign_in(*accounts["黄雪梅"][1:])
        check_what_the_admin_sees(admin)
        check_an_organiser_sees_only_their_branch(admin, office, finance)
        check_announcements(admin, office, mongo_uri, demo_db)
    finally:
        server.stop()

    before = counts(mongo_uri, demo_db)
    again = demo(mongo_uri, demo_db, "--password", "another-password-1")
    assert again.returncode != 0
    assert "refused" in again.stderr and "member" in again.stderr
    assert counts(mongo_uri, demo_db) == before


def check_what_the_admin_sees(admin: Client) -> None:
    now = datetime.now(UTC)
    orgs = everything(admin, "/orgs")
    kinds = sorted(o["kind"] for o in orgs)
    assert kinds.count("committee") == 1 and kinds.count("branch") >= 4 and "group" in kinds
    members = everything(admin, "/members")
    assert len(members) >= 30
    assert len({m["phone_masked"] for m in members}) == len(members)
    assert any(not m["active"] for m in members)
    assert {m["roles"][0]["role"] for m in members if m["roles"]} == {"admin", "organiser"}

    sessions = everything(admin, "/study/sessions")
    past = [s for s in sessions if parse(s["ends_at"]) < now]
    upcoming = [s for s in sessions if parse(s["starts_at"]) > now and s["status"] == "scheduled"]
    assert len(past) >= 5 and len(upcoming) >= 4
    assert any(s["status"] == "cancelled" for s in sessions)
    assert {(parse(s["starts_at"]) - now).days for s in upcoming} & {0, 1, 2, 3}  # this week
    assert {(parse(s["starts_at"]) - now).days for s in upcoming} & set(range(6, 14))  # and next
    totals = {"present": 0, "late": 0, "leave": 0, "absent": 0}
    sources = set()
    for session in past:
        roster = admin.ok("GET", f"/study/sessions/{session['id']}/attendance")
        for status in totals:
            totals[status] += roster["counts"][status]
            sources |= {e.get("source") for e in roster[status]}
    assert all(totals.values()), totals
    assert {"member", "organiser", "request"} <= sources  # scans, a manual mark, an approved leave
    live = [s for s in upcoming if parse(s["checkin_opens_at"]) <= now]
    assert live and admin.ok("GET", f"/study/sessions/{live[0]['id']}/attendance")["counts"]["present"] > 0
    requests = everything(admin, "/study/requests")
    assert {"pending", "approved"} <= {r["status"] for r in requests}

    activities = everything(admin, "/activities")
    assert PROGRAMMES <= {a["programme"] for a in activities if a["confirmed_count"]}
    full = [a for a in activities if a["status"] == "published" and a["confirmed_count"] == a["capacity"]
            and a["waitlist_count"] > 0]
    assert full
    roster = admin.ok("GET", f"/activities/{full[0]['id']}/signups")
    assert [e["position"] for e in roster["waitlisted"]] == list(range(1, full[0]["waitlist_count"] + 1))
    assert any(a["status"] == "published" and parse(a["signup_opens_at"]) <= now < parse(a["signup_closes_at"])
               and a["confirmed_count"] < a["capacity"] for a in activities)
    ended = [a for a in activities if a["status"] == "published" and parse(a["ends_at"]) < now]
    assert ended and admin.ok("GET", f"/activities/{ended[0]['id']}/feedback")["count"] > 0
    assert {"draft", "cancelled"} <= {a["status"] for a in activities}

    warnings = everything(admin, "/warnings")
    assert {"open", "rectifying", "closed"} <= {w["status"] for w in warnings}
    rectifying = next(w for w in warnings if w["status"] == "rectifying")
    assert [step["status"] for step in rectifying["history"]] == ["open", "rectifying"]
    root = admin.member["org_id"]
    period = min(w["period"] for w in warnings)
    compliance = admin.ok("GET", f"/orgs/{root}/study/compliance", params={"period": period})
    assert 0 < next(o for o in compliance["orgs"] if o["org_id"] == root)["rate"] < 1
    assert admin.ok("GET", f"/orgs/{root}/study-scheme")["name"] == "四个五"


def check_an_organiser_sees_only_their_branch(admin: Client, office: Client, finance: Client) -> None:
    branch = office.member["org_id"]
    assert office.member["roles"] == [{"role": "organiser", "org_id": branch}]
    root = admin.member["org_id"]
    mine = everything(office, "/members")
    assert mine and {m["org_id"] for m in mine} == {branch}
    assert {w["org_id"] for w in everything(office, "/warnings")} == {branch}
    assert {s["org_id"] for s in everything(office, "/study/sessions")} <= {branch, root}
    assert {a["org_id"] for a in everything(office, "/activities")} <= {branch, root}

    elsewhere = finance.member["org_id"]
    assert office.get("/members", params={"org_id": elsewhere}).status == 404
    assert office.get(f"/orgs/{elsewhere}/study/compliance").status == 404
    theirs = [s for s in everything(finance, "/study/sessions") if s["org_id"] == elsewhere]
    assert theirs
    assert office.get(f"/study/sessions/{theirs[0]['id']}/attendance").code == "session_not_found"
    draft = [a for a in everything(finance, "/activities") if a["status"] == "draft"]
    assert draft and office.get(f"/activities/{draft[0]['id']}").code == "activity_not_found"


def check_announcements(admin: Client, office: Client, mongo_uri: str, db_name: str) -> None:
    """There is no list of announcements in the API yet: their ids come from the database, the rest is HTTP."""
    now = datetime.now(UTC)
    with MongoClient(mongo_uri) as client:
        ids = [d["_id"] for d in client[db_name]["announcements"].find({}, {"_id": 1})]
    shown = [admin.ok("GET", f"/announcements/{i}") for i in ids]
    must_read = [a for a in shown if a["pinned"] and a["must_read"]]
    assert must_read
    receipts = admin.ok("GET", f"/announcements/{must_read[0]['id']}/receipts")
    assert 0 < receipts["acked"] < receipts["read"] < receipts["audience"]
    assert len(receipts["unread_members"]) == receipts["audience"] - receipts["read"]
    assert any(parse(a["publish_at"]) > now for a in shown)  # scheduled
    assert any(a["expires_at"] and parse(a["expires_at"]) < now for a in shown)  # expired
    feed = office.ok("GET", "/feed")["items"]
    assert feed[0]["ref_id"] == must_read[0]["id"] and feed[0]["pinned"]
    on_air = {i["ref_id"] for i in feed if i["kind"] == "announcement"}
    assert all(a["id"] not in on_air for a in shown if parse(a["publish_at"]) > now
               or (a["expires_at"] and parse(a["expires_at"]) < now))


def test_demo_on_the_embedded_database_then_the_server_on_the_same_data_dir(tmp_path):
    """The README's way: no URI, the embedded database under --data-dir, kept for the server started after."""
    env = environment("branchline")
    run = subprocess.run([sys.executable, "-m", "server", "demo", "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"--data-dir {tmp_path}" in run.stdout
    accounts = ACCOUNT.findall(run.stdout)
    server = Served(None, "branchline", tmp_path)
    try:
        for _, _, phone, password in accounts[:2]:
            assert everything(server.sign_in(phone, password), "/members")
    finally:
        server.stop()
    again = subprocess.run([sys.executable, "-m", "server", "demo", "--data-dir", str(tmp_path)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "refused" in again.stderr

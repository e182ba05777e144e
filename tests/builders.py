"""What the test modules build again and again, once: times, the clock, small worlds of orgs and members,
bodies of activities and sessions, check-ins, announcements and the feed, files, sign-ins, and raw requests.

Plain functions a test imports; the fixtures stay in conftest.py, where pytest finds them for every module.
"""

from __future__ import annotations

import socket
import time
import uuid
import weakref
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from tests.conftest import Api, Client

# -- injected failures -----------------------------------------------------------------------------

def fail_writes(monkeypatch, collection: str, method: str) -> None:
    """Make `method` on `collection` fail (with monkeypatch): a write half-way through a change."""
    original = getattr(AsyncCollection, method)

    async def failing(self, *args, **kwargs):
        if self.name == collection:
            raise OperationFailure("injected failure", code=8000)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, method, failing)


# -- times ------------------------------------------------------------------------------------------

def iso(moment: datetime) -> str:
    """A moment as the API writes it: UTC with Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- places -----------------------------------------------------------------------------------------

#: A meeting room with a check-in radius, and a phone's location fix inside it (geo check-ins).
HERE = {"name": "党员活动室", "lat": 39.9087, "lng": 116.3975, "radius_m": 100}
FIX = {"lat": 39.9088, "lng": 116.3976, "accuracy": 10}


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def wait_until(check, timeout=5.0):
    """Poll `check` until it is true or `timeout` seconds pass; → its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


# -- the clock: access tokens live 15 minutes, so moving the server's time re-signs the clients -------

_remembered: weakref.WeakKeyDictionary[Api, list[Client]] = weakref.WeakKeyDictionary()


def remember(api: Api, *clients: Client) -> None:
    """Keep `clients` signed in whenever the clock moves (`move_to`, `advance`)."""
    _remembered.setdefault(api, []).extend(clients)


def move_to(api: Api, moment: datetime, *clients: Client) -> None:
    """Set the server clock to `moment`, then re-sign the admin, every remembered client and `clients`."""
    delta = moment - api.clock.now()
    api.clock.advance(seconds=delta.total_seconds())
    for client in [api.admin, *_remembered.get(api, []), *clients]:
        token = api.signer.issue(client.member["id"], api.clock.now(), 900)
        client.token = token
        client.http.headers["Authorization"] = f"Bearer {token}"


def advance(api: Api, *clients: Client, **delta: float) -> None:
    """Move the server clock by `delta` (timedelta fields); re-sign as `move_to` does."""
    move_to(api, api.clock.now() + timedelta(**delta), *clients)


# -- worlds -----------------------------------------------------------------------------------------

def two_branches(api: Api) -> dict:
    """Two branches under one general branch; an organiser and members in branch A, a member in B."""
    general = api.org("机关总支", "general_branch")
    a = api.org("第一支部", "branch", general["id"])
    b = api.org("第二支部", "branch", general["id"])
    return {"general": general, "a": a, "b": b, "org_a": api.organiser(a["id"], "张书记"),
            "m1": api.member(a["id"], "李明"), "m2": api.member(a["id"], "王芳", gender="female"),
            "mb": api.member(b["id"], "赵强")}


@dataclass
class StudyWorld:
    branch: dict
    other_branch: dict
    organiser: Client
    members: list[Client]
    outsider: Client
    outsider_organiser: Client


def study_world(api: Api, members: int = 3) -> StudyWorld:
    """Branch A with an organiser and `members` members; branch B with one member and its organiser.

    All of them are remembered: they stay signed in when the clock moves."""
    branch = api.org("第一支部")
    other = api.org("第二支部")
    organiser = api.organiser(branch["id"], "张书记")
    people = [api.member(branch["id"], f"党员{i}") for i in range(members)]
    outsider = api.member(other["id"], "外支部党员")
    outsider_organiser = api.organiser(other["id"], "李书记")
    remember(api, organiser, *people, outsider, outsider_organiser)
    return StudyWorld(branch, other, organiser, people, outsider, outsider_organiser)


def count(api: Api, collection: str, query: dict) -> int:
    return api.run(api.db[collection].count_documents(query))


# -- activities -------------------------------------------------------------------------------------

def activity_body(api: Api, org_id: str, *, programme: str = "unity", capacity: int = 10, waitlist: bool = False,
                  opens: timedelta = timedelta(hours=-1), closes: timedelta = timedelta(days=1),
                  starts: timedelta = timedelta(days=2), hours: float = 2, **extra) -> dict:
    """An activity whose sign-up is open now, closes in a day and which starts in two."""
    now = api.clock.now()
    body = {"programme": programme, "org_id": org_id, "title": "读书会", "description": "一起读书",
            "starts_at": iso(now + starts), "ends_at": iso(now + starts + timedelta(hours=hours)),
            "signup_opens_at": iso(now + opens), "signup_closes_at": iso(now + closes),
            "capacity": capacity, "waitlist": waitlist}
    body.update(extra)
    return body


def published(api: Api, organiser: Client, org_id: str, **kw) -> dict:
    act = organiser.ok("POST", "/activities", 201, json=activity_body(api, org_id, **kw))
    return organiser.ok("POST", f"/activities/{act['id']}/publish")


def activity_checkin(organiser: Client, member: Client, path: str, status: int = 201) -> dict:
    """`member` scans the QR code the organiser shows for the activity at `path`."""
    token = organiser.ok("GET", path + "/qr")["token"]
    return member.ok("POST", path + "/checkins", status, json={"qr_token": token})


def started_with_a_signup(api: Api) -> tuple[Client, Client, str]:
    """A branch's published activity two days on, with one confirmed member: (organiser, member, path)."""
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    member = api.member(branch["id"])
    path = f"/activities/{published(api, organiser, branch['id'])['id']}"
    member.ok("POST", path + "/signups", 201)
    advance(api, organiser, member, days=2)
    return organiser, member, path


# -- study sessions ---------------------------------------------------------------------------------

def session_body(api: Api, org_id: str, *, start_in: timedelta = timedelta(hours=1),
                 length: timedelta = timedelta(hours=1), track: str = "group_meeting", title: str = "党小组会",
                 **fields) -> dict:
    starts = api.clock.now() + start_in
    return {"org_id": org_id, "track": track, "title": title, "starts_at": iso(starts),
            "ends_at": iso(starts + length), **fields}


def new_session(api: Api, organiser: Client, org_id: str, **kw) -> dict:
    return organiser.ok("POST", "/study/sessions", 201, json=session_body(api, org_id, **kw))


def qr_token(organiser: Client, session_id: str) -> str:
    return organiser.ok("GET", f"/study/sessions/{session_id}/qr")["token"]


def checkin(client: Client, session_id: str, token: str | None, **fields):
    return client.post("/study/checkins", json={"session_id": session_id, "qr_token": token, **fields})


def break_audit(api: Api, action: str) -> None:
    """Make the next audit entry with `action` fail in the database (a unique index it collides with)."""
    async def go():
        audit = api.db["audit_log"]
        await audit.delete_many({"action": action})
        await audit.insert_one({"_id": f"blocker-{action}", "action": action})
        await audit.create_index([("action", ASCENDING)], unique=True, name="break_audit",
                                 partialFilterExpression={"action": action})
    api.run(go())


def mend_audit(api: Api) -> None:
    async def go():
        await api.db["audit_log"].drop_index("break_audit")
        await api.db["audit_log"].delete_many({"_id": {"$regex": "^blocker-"}})
    api.run(go())


# -- announcements and the feed ---------------------------------------------------------------------

def publish(api: Api, org_client: Client, org_id: str, title: str, **extra) -> str:
    """Publish an announcement; → its id."""
    return org_client.ok("POST", "/announcements", 201, json={"org_id": org_id, "title": title,
                                                              "body": f"{title}的内容", **extra})["id"]


def sync_all(client: Client, since=None, limit=100):
    """Follow has_more to the end; return (changes, token)."""
    changes = []
    while True:
        path = f"/sync?limit={limit}" + (f"&since={since}" if since else "")
        body = client.ok("GET", path)
        changes += body["changes"]
        since = body["next_since"]
        if not body["has_more"]:
            return changes, since


def whole_feed(client: Client, unread: list | None = None) -> dict[str, int]:
    """Every item of the member's feed (id → version); `unread` collects the ids not read."""
    out: dict[str, int] = {}
    before = None
    while True:
        page = client.ok("GET", "/feed?limit=100" + (f"&before={before}" if before else ""))
        out.update({i["id"]: i["version"] for i in page["items"]})
        if unread is not None:
            unread.extend(i["id"] for i in page["items"] if not i["read"])
        before = page["next_before"]
        if not before:
            return out


# -- files ------------------------------------------------------------------------------------------

def png(seed: int = 0) -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    raw = b"\x00" + bytes([seed % 256, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def upload(client: Client, content: bytes, mime: str, name: str = "file.bin", **kw):
    """A raw upload; X-Filename is percent-encoded UTF-8 (headers are ASCII)."""
    return client.post("/files", content=content, headers={"Content-Type": mime, "X-Filename": quote(name), **kw})


def text_file(client: Client, content: bytes = b"0123456789" * 10) -> dict:
    response = upload(client, content, "text/plain", "note.txt")
    assert response.status == 201, response
    return response.json


def no_partial_uploads(api: Api) -> bool:
    """Wait until no upload is left half-written in the files' temporary directory."""
    return wait_until(lambda: not list((api.ctx.settings.data_dir / "files" / "tmp").iterdir()), timeout=10)


def chunks(total: int, size: int = 256 * 1024, fill: bytes = b"a"):
    """A body of `total` bytes in pieces of `size`: sent chunked, without a Content-Length."""
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield fill * step


# -- signing in -------------------------------------------------------------------------------------

def bind_wechat(api: Api, client: Client) -> str:
    """Sign `client`'s member in with WeChat once (an invite binds the identity); → the openid."""
    openid = f"oid-{uuid.uuid4().hex[:12]}"
    anon = api.anonymous()
    bind_token = anon.ok("POST", "/auth/wechat", json={"code": f"ok:{openid}"})["bind_token"]
    code = api.admin.ok("POST", f"/members/{client.id}/invite", 201)["invite_code"]
    anon.ok("POST", "/auth/bind", json={"bind_token": bind_token, "invite_code": code})
    return openid


def allow(client: Client, template_id: str, times: int = 1) -> None:
    """The member tapped 允许 `times` times for this template (what wx.requestSubscribeMessage reports)."""
    for _ in range(times):
        client.ok("POST", "/me/subscriptions", json={"results": {template_id: "accept"}})


def sign_in(api: Api, phone: str, password: str, ip: str = "10.0.0.1"):
    """Sign in with a password as a caller at `ip` (X-Real-Ip: the server must trust the proxy,
    `pytest.mark.settings(trust_proxy=True)`)."""
    return api.anonymous().post("/auth/password", json={"phone": phone, "password": password},
                                headers={"X-Real-Ip": ip})


def member_record(api: Api, member_id: str) -> dict:
    """The member's document as stored."""
    return api.run(api.db.members.find_one({"_id": member_id}))


# -- raw HTTP ---------------------------------------------------------------------------------------

def open_request(port: int, token: str, path: str, declared: int, first_part: bytes) -> socket.socket:
    """Headers and the first part of a body declared `declared` bytes long, then nothing more.

    The 100 Continue comes once the handler exists (after its prepare()), so the request is in flight."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(30)
    head = (f"POST /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: text/plain\r\nX-Filename: slow.txt\r\nContent-Length: {declared}\r\n"
            "Expect: 100-continue\r\n\r\n")
    sock.sendall(head.encode())
    assert sock.recv(1024).startswith(b"HTTP/1.1 100")
    sock.sendall(first_part)
    return sock

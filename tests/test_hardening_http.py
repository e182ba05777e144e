"""HTTP hardening (security review findings 4, 8, 12, 13): Range parsing, slow and aborted bodies,
download headers, oversized chunked uploads, and file access that follows resource visibility."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from server import files
from server.app import drain
from tests.test_activities_flow import activity_body, published
from tests.test_announcements import wait_until
from tests.test_files import PDF, png, upload
from tests.test_lifecycle import ServerProcess
from tests.test_study_support import move_to
from tests.test_study_support import world as study_world


@pytest.fixture
def settings_overrides(tmp_path):
    # A short body timeout for the stalled sender; a long grace period, so a drain that waits for a
    # request that will never finish is told apart from one that has nothing to wait for.
    return {"data_dir": tmp_path, "body_timeout_seconds": 1.0, "shutdown_grace_seconds": 300.0}


def text_file(client, content: bytes = b"0123456789" * 10) -> dict:
    response = upload(client, content, "text/plain", "note.txt")
    assert response.status == 201, response
    return response.json


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


def nothing_in_flight(api) -> bool:
    return wait_until(lambda: not api.ctx.inflight, timeout=10)


def no_partial_uploads(api) -> bool:
    return wait_until(lambda: not list((api.ctx.settings.data_dir / "files" / "tmp").iterdir()), timeout=10)


# -- finding 4: Range ------------------------------------------------------------------------------

def test_range_positions_of_thousands_of_digits_follow_rfc_9110(api):
    owner = api.member(api.org("一支部")["id"])
    doc = text_file(owner)
    path, huge = f"/files/{doc['id']}", "9" * 5000

    # first-pos beyond the end: unsatisfiable (RFC 9110 §14.1.1), 416 with the current length
    beyond = owner.get(path, headers={"Range": f"bytes={huge}-"})
    assert beyond.status == 416 and beyond.code == "range_not_satisfiable", beyond
    assert beyond.headers["Content-Range"] == "bytes */100"
    # a last-pos or suffix-length past the end means "to the end" (§14.1.2): the whole file as 206
    for spec in (f"bytes=0-{huge}", f"bytes=-{huge}", f"bytes={'0' * 4000}-"):
        whole = owner.get(path, headers={"Range": spec})
        assert whole.status == 206 and whole.content == b"0123456789" * 10, (spec[:30], whole)
        assert whole.headers["Content-Range"] == "bytes 0-99/100"
    # not a byte range by the grammar, or an invalid one (last < first): ignored (§14.2), the whole file
    for spec in ("bytes=abc", "bytes = 1-2", "bytes=1-2,4-5", "items=1-2", "bytes=5-2", f"bytes={huge}x-"):
        ignored = owner.get(path, headers={"Range": spec})
        assert ignored.status == 200 and len(ignored.content) == 100, (spec[:30], ignored)
    part = owner.get(path, headers={"Range": "BYTES=2-4"})
    assert part.status == 206 and part.content == b"234"


# -- finding 8: slow and aborted bodies ---------------------------------------------------------------

def test_a_stalled_body_is_cut_off_after_the_body_timeout(api):
    owner = api.member(api.org("一支部")["id"])
    sock = open_request(api.port, owner.token, "/files", 1000, b"x" * 10)
    try:  # the body timeout is 1 s; without one the server would wait for ever (the socket gives up at 30 s)
        answer = sock.recv(1024)
    except ConnectionResetError:
        answer = b""
    finally:
        sock.close()
    assert answer == b""  # closed without an answer: the client never finished its request
    assert nothing_in_flight(api)
    assert no_partial_uploads(api)


def test_aborted_requests_leave_nothing_in_flight_so_shutdown_does_not_wait(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    for path in ("/files", "/announcements"):
        sock = open_request(api.port, organiser.token, path, 5000, b'{"org_id": ')
        sock.close()
    assert nothing_in_flight(api)
    assert no_partial_uploads(api)
    # The drain (what SIGTERM runs) has nothing to wait for: it returns well inside the 300 s grace period.
    api.run(drain(api.server, api.ctx), timeout=30)


def test_sigterm_after_an_aborted_upload_has_nothing_left_to_wait_for(tmp_path):
    server = ServerProcess(tmp_path)
    try:
        open_request(server.port, server.login()["access_token"], "/files", 5000, b"abc").close()
        assert server.stop() == 0
        log = server.process.stderr.read().decode()
    finally:
        server.process.kill()
    assert "still running after the grace period" not in log, log


# -- finding 12: download headers, oversized chunked uploads -------------------------------------------

SANDBOX = "sandbox; default-src 'none'"


def test_downloads_are_sandboxed_and_text_carries_its_charset(api):
    branch = api.org("一支部")
    organiser = api.organiser(branch["id"])
    note = text_file(organiser, "学习心得".encode())
    got = organiser.get(f"/files/{note['id']}")
    assert got.status == 200 and got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.headers["Content-Security-Policy"] == SANDBOX
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    image = organiser.get(f"/files/{upload(organiser, png(), 'image/png', 'a.png').json['id']}")
    assert image.headers["Content-Type"] == "image/png" and image.headers["Content-Security-Policy"] == SANDBOX

    act = published(api, organiser, branch["id"])
    for fmt in ("csv", "xlsx"):
        roster = organiser.get(f"/activities/{act['id']}/signups?format={fmt}")
        assert roster.status == 200 and roster.headers["Content-Security-Policy"] == SANDBOX, fmt


def test_no_response_names_the_server_software(api):
    owner = api.member(api.org("一支部")["id"])
    doc = text_file(owner)
    responses = [api.anonymous().get("/healthz"), api.anonymous().get("/nowhere"), api.anonymous().get("/me"),
                 owner.get("/me"), owner.get(f"/files/{doc['id']}"), owner.get(f"/files/{doc['id']}",
                                                                               headers={"Range": "bytes=1-2"})]
    for response in responses:
        assert "Server" not in response.headers, response


def chunks(total: int, size: int = 256 * 1024):
    sent = 0
    while sent < total:
        step = min(size, total - sent)
        sent += step
        yield b"a" * step


def test_an_upload_over_the_limit_is_413_however_it_is_sent(api):
    owner = api.member(api.org("一支部")["id"])
    size = files.MAX_FILE_SIZE + 2 * 1024 * 1024  # past any multipart framing allowance
    headers = {"Content-Type": "text/plain", "X-Filename": "big.txt"}
    chunked = owner.post("/files", content=chunks(size), headers=headers)
    assert chunked.status == 413 and chunked.code == "file_too_large", chunked
    declared = owner.post("/files", content=b"a" * size, headers=headers)
    assert declared.status == 413 and declared.code == "file_too_large", declared
    multipart = owner.post("/files", files={"file": ("big.txt", b"a" * size, "text/plain")})
    assert multipart.status == 413 and multipart.code == "file_too_large", multipart
    assert owner.ok("GET", "/me")["id"] == owner.id  # the client's connections still work
    assert no_partial_uploads(api)


# -- finding 13: one visibility rule for a resource and its files ------------------------------------------

def test_activity_cover_is_downloadable_by_whoever_sees_the_activity(api):
    general = api.org("机关总支", "general_branch")
    branch = api.org("第一支部", "branch", general["id"])
    sibling = api.org("第二支部", "branch", general["id"])
    organiser = api.organiser(branch["id"])
    cover = upload(organiser, png(7), "image/png", "cover.png").json["id"]
    act = published(api, organiser, branch["id"], cover_file_id=cover)
    draft = organiser.ok("POST", "/activities", 201, json=activity_body(api, branch["id"], cover_file_id=cover))

    root_member = api.member(api.root_org_id, "机关党员")  # an ancestor of the branch: sees its activities
    in_branch = api.member(branch["id"], "支部党员")
    for viewer in (root_member, api.member(general["id"], "总支党员"), in_branch):
        assert viewer.get(f"/activities/{act['id']}").status == 200
        assert viewer.get(f"/files/{cover}").status == 200, viewer.member["name"]
    outsider = api.member(sibling["id"], "外支部党员")
    assert outsider.get(f"/activities/{act['id']}").code == "activity_not_found"
    assert outsider.get(f"/files/{cover}").code == "file_not_found"

    # Only the draft references a second cover: nobody but organisers sees a draft, so nobody else gets it.
    second = upload(organiser, png(8), "image/png", "draft.png").json["id"]
    organiser.ok("PATCH", f"/activities/{draft['id']}", json={"cover_file_id": second})
    assert in_branch.get(f"/activities/{draft['id']}").code == "activity_not_found"
    assert in_branch.get(f"/files/{second}").code == "file_not_found"
    colleague = api.organiser(branch["id"], "副书记")
    assert colleague.get(f"/activities/{draft['id']}").status == 200
    assert colleague.get(f"/files/{second}").status == 200


def test_announcement_files_follow_the_announcement(api):
    general = api.org("机关总支", "general_branch")
    branch = api.org("第一支部", "branch", general["id"])
    organiser = api.organiser(branch["id"])
    pdf = upload(organiser, PDF, "application/pdf", "材料.pdf").json["id"]
    aid = organiser.ok("POST", "/announcements", 201, json={"org_id": branch["id"], "title": "学习材料",
                                                             "body": "见附件", "file_ids": [pdf]})["id"]
    audience = api.member(branch["id"], "支部党员")
    above = api.member(general["id"], "总支党员")  # the audience is the branch's subtree, not its ancestors
    general_organiser = api.organiser(general["id"], "总支书记")
    for viewer, sees in ((audience, True), (general_organiser, True), (above, False)):
        assert (viewer.get(f"/announcements/{aid}").status == 200) is sees
        assert (viewer.get(f"/files/{pdf}").status == 200) is sees, viewer.member["name"]


def test_rectification_files_follow_the_warning(api):
    move_to(api, datetime(2025, 11, 20, 4, 0, tzinfo=UTC))
    w = study_world(api, members=1)
    member = w.members[0]
    api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11")
    listed = w.organiser.ok("GET", f"/warnings?org_id={w.branch['id']}&limit=100")["items"]
    wid = next(x["id"] for x in listed if x["member_id"] == member.id)
    note = text_file(w.organiser, "已组织补学".encode())["id"]
    w.organiser.ok("POST", f"/warnings/{wid}/rectify", json={"note": "已整改", "file_ids": [note]})
    branch_admin = api.org_admin(w.branch["id"], "支部管理员")
    for viewer, sees in ((branch_admin, True), (api.admin, True), (member, False), (w.outsider_organiser, False)):
        assert (wid in {x["id"] for x in viewer.get("/warnings?limit=100").json.get("items", [])}) is sees
        assert (viewer.get(f"/files/{note}").status == 200) is sees

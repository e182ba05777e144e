"""Files through HTTP (API.md §8): upload checks, deduplication, Range/ETag (positions of any length, as
RFC 9110 says), sandboxed downloads, uploads over the limit however they are sent, who may download (one
visibility rule for a resource and its files), and uploads that stream to disk in a real server process."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import psutil

from server import files
from tests.builders import (
    PDF,
    activity_body,
    chunks,
    iso,
    move_to,
    no_partial_uploads,
    png,
    published,
    study_world,
    text_file,
    two_branches,
    upload,
)


def xlsx() -> bytes:
    from openpyxl import Workbook
    book = Workbook()
    book.active.append(["姓名", "支部"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def blobs(api) -> list:
    return [p for p in (api.ctx.settings.data_dir / "files").rglob("*") if p.is_file()]


def test_upload_kinds_dedup_and_download(api):
    w = two_branches(api)
    org_a = w["org_a"]
    image = png()
    first = upload(org_a, image, "image/png", "照片.png")
    assert first.status == 201, first
    body = first.json
    assert body == {"id": body["id"], "name": "照片.png", "size": len(image), "mime": "image/png",
                    "sha256": hashlib.sha256(image).hexdigest()}
    second = upload(org_a, image, "application/octet-stream", "again.png")
    assert second.status == 201 and second.json["id"] != body["id"] and second.json["mime"] == "image/png"
    assert len(blobs(api)) == 1  # stored once, by content

    multipart = org_a.post("/files", files={"file": ("会议纪要.pdf", PDF, "application/pdf")},
                           data={"note": "ignored"})
    assert multipart.status == 201 and multipart.json["mime"] == "application/pdf", multipart
    assert multipart.json["name"] == "会议纪要.pdf"
    sheet = upload(org_a, xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "名单.xlsx")
    assert sheet.status == 201 and sheet.json["mime"].endswith("spreadsheetml.sheet"), sheet
    text = upload(org_a, "学习心得：坚持不懈。\n".encode() * 100, "text/plain; charset=utf-8", "心得.txt")
    assert text.status == 201 and text.json["mime"] == "text/plain"
    assert len(blobs(api)) == 4

    got = org_a.get(f"/files/{body['id']}")
    assert got.status == 200 and got.content == image and got.headers["Content-Type"] == "image/png"
    etag = got.headers["ETag"]
    assert etag == f'"{body["sha256"]}"' and got.headers["Accept-Ranges"] == "bytes"
    assert org_a.get(f"/files/{body['id']}", headers={"If-None-Match": etag}).status == 304
    part = org_a.get(f"/files/{body['id']}", headers={"Range": "bytes=2-9"})
    assert part.status == 206 and part.content == image[2:10]
    assert part.headers["Content-Range"] == f"bytes 2-9/{len(image)}"
    tail = org_a.get(f"/files/{body['id']}", headers={"Range": "bytes=-5"})
    assert tail.status == 206 and tail.content == image[-5:]
    stale = org_a.get(f"/files/{body['id']}", headers={"Range": "bytes=0-3", "If-Range": '"other"'})
    assert stale.status == 200 and stale.content == image
    bad = org_a.get(f"/files/{body['id']}", headers={"Range": f"bytes={len(image) + 5}-"})
    assert bad.status == 416 and bad.headers["Content-Range"] == f"bytes */{len(image)}"
    plain = org_a.get(f"/files/{text.json['id']}", headers={"Accept-Encoding": "gzip"})
    assert plain.status == 200 and "Content-Encoding" not in plain.headers

    # nobody else may download a file that no resource references
    for client in (w["m1"], w["mb"], api.admin):
        assert client.get(f"/files/{body['id']}").code == "file_not_found"
    assert org_a.get("/files/nothing").code == "file_not_found"


def test_refusals_413_415(api):
    w = two_branches(api)
    m1 = w["m1"]
    assert upload(m1, PDF, "image/png", "fake.png").code == "unsupported_media_type"
    assert upload(m1, png(), "application/pdf", "fake.pdf").code == "unsupported_media_type"
    assert upload(m1, png(), "text/plain", "fake.txt").code == "unsupported_media_type"
    zipped = io.BytesIO()
    import zipfile
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("run.sh", "echo hi")
    assert upload(m1, zipped.getvalue(), "application/zip", "a.zip").code == "unsupported_media_type"
    assert upload(m1, zipped.getvalue(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                  "fake.docx").code == "unsupported_media_type"
    assert upload(m1, b"\x7fELF\x02\x01\x01" + bytes(200), "application/octet-stream").code \
        == "unsupported_media_type"
    assert upload(m1, b"MZ" + bytes(300), "application/octet-stream").code == "unsupported_media_type"
    assert upload(m1, b"text with a \x00 nul", "text/plain").code == "unsupported_media_type"
    assert upload(m1, "半个字".encode()[:-1], "text/plain").code == "unsupported_media_type"
    assert upload(m1, b"", "text/plain").code == "invalid_request"
    assert m1.post("/files", content=b"--x--", headers={"Content-Type": "multipart/form-data"}).code \
        == "invalid_request"

    big = b"a" * (files.MAX_FILE_SIZE + 1)
    too_big = upload(m1, big, "text/plain", "big.txt")
    assert too_big.status == 413 and too_big.code == "file_too_large"
    exact = upload(m1, b"b" * files.MAX_FILE_SIZE, "text/plain", "exact.txt")
    assert exact.status == 201 and exact.json["size"] == files.MAX_FILE_SIZE
    assert not list((api.ctx.settings.data_dir / "files" / "tmp").iterdir())  # nothing left behind
    assert api.anonymous().post("/files", content=b"x", headers={"Content-Type": "text/plain"}).code \
        == "unauthenticated"


def test_files_follow_the_announcement_that_uses_them(api):
    w = two_branches(api)
    org_a, m1, mb = w["org_a"], w["m1"], w["mb"]
    fid = upload(org_a, PDF, "application/pdf", "材料.pdf").json["id"]
    other = upload(m1, png(1), "image/png", "mine.png").json["id"]
    body = {"org_id": w["a"]["id"], "title": "学习材料", "body": "见附件"}
    # only your own uploads can be attached
    refused = org_a.post("/announcements", json={**body, "file_ids": [other]})
    assert refused.status == 422 and refused.code == "file_not_found"
    assert m1.get(f"/files/{other}").status == 200

    general_org = api.organiser(w["general"]["id"])
    colleague = api.organiser(w["a"]["id"], "副书记")
    now = api.clock.now()
    aid = org_a.ok("POST", "/announcements", 201, json={
        **body, "file_ids": [fid], "publish_at": iso(now + timedelta(minutes=30))})["id"]
    assert m1.get(f"/files/{fid}").code == "file_not_found"  # not published yet
    api.clock.advance(minutes=31)
    org_a, m1, mb, general_org, colleague = (api.as_member(c.member)
                                             for c in (org_a, m1, mb, general_org, colleague))
    assert m1.get(f"/files/{fid}").content == PDF
    assert mb.get(f"/files/{fid}").code == "file_not_found"  # branch B: never
    assert general_org.get(f"/files/{fid}").status == 200  # an organiser above

    # another organiser edits it and keeps the attachment; replacing it cuts access to the old file
    assert colleague.ok("PATCH", f"/announcements/{aid}", json={"title": "学习材料（更新）",
                                                                 "file_ids": [fid]})["file_ids"] == [fid]
    new_fid = upload(org_a, png(2), "image/png", "新.png").json["id"]
    org_a.ok("PATCH", f"/announcements/{aid}", json={"file_ids": [new_fid]})
    assert m1.get(f"/files/{fid}").code == "file_not_found"
    assert m1.get(f"/files/{new_fid}").status == 200
    org_a.delete(f"/announcements/{aid}")
    assert m1.get(f"/files/{new_fid}").code == "file_not_found"
    assert org_a.get(f"/files/{new_fid}").status == 200  # the uploader always


def test_declared_length_over_the_limit_is_refused_before_the_body(api):
    w = two_branches(api)
    size = files.MAX_FILE_SIZE + 200 * 1024  # over the limit with any multipart framing, under the server's cap
    response = upload(w["m1"], b"c" * size, "text/plain", "huge.txt")
    assert response.status == 413 and response.code == "file_too_large"
    assert w["m1"].ok("GET", "/feed")["items"] == []  # the connection pool recovers


def test_upload_honours_idempotency_key(api):
    w = two_branches(api)
    key = {"Idempotency-Key": "upload-1"}
    first = upload(w["m1"], PDF, "application/pdf", "a.pdf", **key)
    again = upload(w["m1"], PDF, "application/pdf", "a.pdf", **key)
    assert first.status == again.status == 201 and first.json == again.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert upload(w["m1"], png(), "image/png", "b.png", **key).code == "idempotency_key_reused"


# -- Range past any length, sandboxed downloads, uploads over the limit however they are sent -------

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


# -- one visibility rule for a resource and its files ---------------------------------------------

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
    api.admin.ok("PUT", f"/orgs/{w.branch['id']}/settings", json={"member_warnings": True})  # off by default
    api.admin.ok("POST", f"/orgs/{w.branch['id']}/warnings/scan?period=2025-11")
    listed = w.organiser.ok("GET", f"/warnings?org_id={w.branch['id']}&limit=100")["items"]
    wid = next(x["id"] for x in listed if x["member_id"] == member.id)
    note = text_file(w.organiser, "已组织补学".encode())["id"]
    w.organiser.ok("POST", f"/warnings/{wid}/rectify", json={"note": "已整改", "file_ids": [note]})
    branch_admin = api.org_admin(w.branch["id"], "支部管理员")
    for viewer, sees in ((branch_admin, True), (api.admin, True), (member, False), (w.outsider_organiser, False)):
        assert (wid in {x["id"] for x in viewer.get("/warnings?limit=100").json.get("items", [])}) is sees
        assert (viewer.get(f"/files/{note}").status == 200) is sees


# -- uploads stream to disk: the API process's memory stays flat while a 20 MiB file arrives -------

def test_memory_stays_flat_while_20_mib_stream_in(start_server):
    server = start_server()
    admin = server.admin()
    (pid,) = server.api_pids()
    process = psutil.Process(pid)
    headers = {"Authorization": f"Bearer {admin.token}", "Content-Type": "text/plain", "X-Filename": "big.txt"}
    with httpx.Client(base_url=server.base_url + "/api/v1", timeout=120) as http:
        warm = http.post("/files", content=b"warm up " * 1000, headers=headers)
        assert warm.status_code == 201, warm.text
        baseline = process.memory_info().rss
        peak = [baseline]
        sampling = [True]

        def sample() -> None:
            while sampling[0]:
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            full = http.post("/files", content=chunks(files.MAX_FILE_SIZE), headers=headers)  # chunked
            over = http.post("/files", content=chunks(files.MAX_FILE_SIZE + 1, fill=b"b"), headers=headers)
        finally:
            sampling[0] = False
            sampler.join()
    assert full.status_code == 201 and full.json()["size"] == files.MAX_FILE_SIZE, full.text
    assert over.status_code == 413 and over.json()["code"] == "file_too_large"
    grew = (peak[0] - baseline) / 2**20
    print(f"RSS grew {grew:.2f} MiB")
    assert grew < 8, f"RSS grew {grew:.1f} MiB while 40 MiB streamed in"

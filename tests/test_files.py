"""Files through HTTP (API.md §8): upload checks, deduplication, Range/ETag, and who may download."""

from __future__ import annotations

import hashlib
import io
import zlib
from datetime import timedelta
from urllib.parse import quote

import pytest

from server import files
from tests.test_announcements import iso, world


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": tmp_path}


def png(seed: int = 0) -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    raw = b"\x00" + bytes([seed % 256, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (1).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00")
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def xlsx() -> bytes:
    from openpyxl import Workbook
    book = Workbook()
    book.active.append(["姓名", "支部"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def upload(client, content: bytes, mime: str, name: str = "file.bin", **kw):
    """A raw upload; X-Filename is percent-encoded UTF-8 (headers are ASCII)."""
    return client.post("/files", content=content, headers={"Content-Type": mime, "X-Filename": quote(name), **kw})


def blobs(api) -> list:
    return [p for p in (api.ctx.settings.data_dir / "files").rglob("*") if p.is_file()]


def test_upload_kinds_dedup_and_download(api):
    w = world(api)
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
    w = world(api)
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
    w = world(api)
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
    w = world(api)
    size = files.MAX_FILE_SIZE + 200 * 1024  # over the limit with any multipart framing, under the server's cap
    response = upload(w["m1"], b"c" * size, "text/plain", "huge.txt")
    assert response.status == 413 and response.code == "file_too_large"
    assert w["m1"].ok("GET", "/feed")["items"] == []  # the connection pool recovers


def test_upload_honours_idempotency_key(api):
    w = world(api)
    key = {"Idempotency-Key": "upload-1"}
    first = upload(w["m1"], PDF, "application/pdf", "a.pdf", **key)
    again = upload(w["m1"], PDF, "application/pdf", "a.pdf", **key)
    assert first.status == again.status == 201 and first.json == again.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert upload(w["m1"], png(), "image/png", "b.png", **key).code == "idempotency_key_reused"

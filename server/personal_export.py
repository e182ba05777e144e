"""GET /me/export (API.md §11, PIPL's right to a copy): everything the server holds about the caller, as a zip
with one JSON file per kind of record, streamed.

What goes in is one table. `EXPORTED` names, for each collection that holds records about a member, the file
it goes to, the query that finds the member's records and what of each record is theirs; `NOT_EXPORTED`
names every other collection that can hold a member's id, and why it stays out. tests/test_export.py
enumerates the database's collections after a member did a bit of everything, finds every document that
holds their id anywhere, and fails when its collection is in neither table (or, for an exported one, when
that document is not in the file).

Nothing of another member's: a record is found by the caller's own id, and the shapes below drop what names
other people (the organiser who marked, decided or answered; a session's attendee list) beyond what the
member already sees in the app. Phones are masked as everywhere else.

Memory: the zip is written by the standard library's `zipfile` into a sink that keeps only the bytes not yet
sent; records are read with a cursor in batches of BATCH, and after each batch the sink's bytes go to the
client (the handler flushes each chunk). What stays in memory is one batch, the deflate state, and one
ZipInfo per file, whatever the number of records (bench/bench_export.py measures it).
"""

from __future__ import annotations

import zipfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import msgspec

from server import (
    announcements,
    audit,
    files,
    identity,
    members,
    org_settings,
    orgs,
    programmes,
    ratelimit,
    suggestions,
)
from server.activities.store import FEEDBACK
from server.context import Context
from server.feed.store import COUNTER, ITEMS, READS, REMOVALS
from server.idempotency import COLLECTION as IDEMPOTENCY
from server.notifications import outbox, signup_reminders
from server.scope import Principal
from server.signups import ACTIVITIES
from server.signups import COLLECTION as SIGNUPS
from server.study import schemes
from server.study.attendance import EVENTS, REQUESTS
from server.study.checkins import DAILY, SELF_STUDY
from server.study.rectification import COLLECTION as WARNINGS
from server.study.sessions import ATTENDANCE
from server.study.sessions import COLLECTION as SESSIONS

BATCH = 200  # records read per round trip, and encoded before the bytes go out
CHUNK = 64 * 1024  # bytes gathered before a write to the client
EXPORT_LIMIT = 3  # exports per member per EXPORT_WINDOW: each reads all their records
EXPORT_WINDOW = timedelta(hours=1)

_encoder = msgspec.json.Encoder(enc_hook=str)

Shape = Callable[[dict, str], dict]


def _without(*private: str) -> Shape:
    """The record as stored, `_id` as `id`, without the keys that are not the member's to see."""
    drop = {"_id", *private}

    def shape(doc: dict, member_id: str) -> dict:
        return {"id": doc["_id"], **{k: v for k, v in doc.items() if k not in drop}}

    return shape


def _only(*keys: str) -> Shape:
    def shape(doc: dict, member_id: str) -> dict:
        return {"id": doc["_id"], **{k: doc.get(k) for k in keys}}

    return shape


def _profile(doc: dict, member_id: str) -> dict:
    return {**members.member_out(doc), "created_at": doc.get("created_at"), "updated_at": doc.get("updated_at"),
            "password_set": doc.get("password_hash") is not None, "anonymised_at": doc.get("anonymised_at")}


def _checkin_event(doc: dict, member_id: str) -> dict:
    out = _without("actor_id")(doc, member_id)
    out["by"] = "self" if doc.get("actor_id") in (None, member_id) else "organiser"
    return out


def _warning(doc: dict, member_id: str) -> dict:
    out = _only("org_id", "period", "track", "reason", "status", "created_at", "updated_at")(doc, member_id)
    out["history"] = [{"status": h["status"], "at": h["at"]} for h in doc.get("history", [])]
    return out


def _audit_entry(doc: dict, member_id: str) -> dict:
    entry = audit.entry_out(doc)
    if entry["actor_id"] != member_id:
        entry["actor_id"] = None  # who among the organisers acted is theirs to know, not part of this copy
    return entry


@dataclass(frozen=True)
class Source:
    """One collection's part of the export, in a file of its own: `query(member_id)` finds the member's records (a
    filter, or several that no record matches twice, each read through its own index); `shape` keeps what is
    theirs."""

    file: str
    query: Callable[[str], dict | list[dict]]
    shape: Shape

    def filters(self, member_id: str) -> list[dict]:
        found = self.query(member_id)
        return found if isinstance(found, list) else [found]


#: collection → where its records about the member go (one file each, written in this order).
EXPORTED: dict[str, Source] = {
    members.COLLECTION: Source("profile.json", lambda m: {"_id": m}, _profile),
    identity.IDENTITIES: Source("wechat.json", lambda m: {"member_id": m}, _only("bound_at", "unionid")),
    members.INVITES: Source("invites.json", lambda m: {"member_id": m},
                            _only("created_at", "expires_at", "used_at")),
    SESSIONS: Source("study_sessions.json", lambda m: {"attendees": m},
                     _only("org_id", "track", "title", "starts_at", "ends_at", "status")),
    ATTENDANCE: Source("attendance.json", lambda m: {"member_id": m},
                       _without("marked_by", "member_org_path", "org_path")),
    EVENTS: Source("checkin_events.json", lambda m: {"member_id": m}, _checkin_event),
    REQUESTS: Source("requests.json", lambda m: {"member_id": m}, _without("decided_by", "pending_key", "org_path")),
    SELF_STUDY: Source("self_study.json", lambda m: {"member_id": m}, _without("member_org_path")),
    WARNINGS: Source("warnings.json", lambda m: {"member_id": m}, _warning),
    SIGNUPS: Source("signups.json", lambda m: {"member_id": m}, _without("seq", "org_path")),
    signup_reminders.COLLECTION: Source("signup_reminders.json", lambda m: {"member_id": m},
                                        _only("activity_id", "state", "asked_at")),
    FEEDBACK: Source("feedback.json", lambda m: {"member_id": m}, _without("org_path")),
    ITEMS: Source("notices.json", lambda m: {"members": m},
                  _only("kind", "ref_kind", "ref_id", "org_id", "title", "summary", "published_at", "state")),
    READS: Source("reads_and_acks.json", lambda m: {"member_id": m}, _only("item_id", "read_at", "acked_at")),
    files.FILES: Source("files.json", lambda m: {"uploader_id": m}, _only("name", "size", "mime", "sha256",
                                                                          "created_at")),
    # Entries about the member: those acting on their record, and those on a record of theirs (a warning).
    audit.COLLECTION: Source("audit.json", lambda m: [{"target_id": m}, {"details.member_id": m,
                                                                         "target_id": {"$ne": m}}], _audit_entry),
    # Notifications (API.md §9): deliveries, the WeChat grants counted per template, and the preferences; named
    # here as that capability stores them (a collection that does not exist yet gives an empty file).
    "notification_deliveries": Source("notification_deliveries.json", lambda m: {"member_id": m}, _without()),
    "notification_grants": Source("notification_grants.json", lambda m: {"member_id": m}, _without()),
    "notification_preferences": Source("notification_preferences.json", lambda m: {"_id": m}, _without()),
}

#: The suggestions file comes through the private author link (server/suggestions.py), so that an anonymous
#: suggestion is found for its author and for nobody else.
SUGGESTIONS_FILE = "suggestions.json"
LINKED = {suggestions.COLLECTION: SUGGESTIONS_FILE, suggestions.AUTHORS: SUGGESTIONS_FILE}

#: collection → why a member's id found there is not exported.
NOT_EXPORTED: dict[str, str] = {
    identity.REFRESH: "hashes of sign-in secrets (one per signed-in device); a copy of a credential only adds risk",
    identity.USED_BIND_TOKENS: "ids of spent one-time WeChat bind tokens, kept until they expire",
    IDEMPOTENCY: "stored replies of the last 24 hours, kept only so a retried request is not done twice; "
                 "what they created is exported in its own file",
    ratelimit.COLLECTION: "counters of recent attempts (sign-in, exports, suggestions), gone within a day",
    DAILY: "the running total of self-study minutes per day, derived from the entries in self_study.json",
    REMOVALS: "sync bookkeeping: which feed items left the member's feed, by sequence number",
    COUNTER: "the feed's sequence counter; holds no member's data",
    outbox.DEDUPE: "keys that stop a reminder being queued twice for one occurrence; the notification itself "
                   "is in notification_deliveries.json",
    ACTIVITIES: "activities as the organiser published them; a member's id appears only as the organiser "
                "who wrote them (their work, not data about them)",
    announcements.COLLECTION: "announcements as published; a member's id appears only as the organiser who "
                              "wrote them",
    schemes.COLLECTION: "the org's study scheme; a member's id appears only as the admin who last set it",
    org_settings.COLLECTION: "the org's settings; a member's id appears only as the admin who last set them",
    orgs.COLLECTION: "the organisation tree; a member's id appears only as the admin who created an org",
    programmes.COLLECTION: "programme rules; a member's id appears only as the admin who last set them",
    files.REFS: "which record uses which file; the files a member uploaded are in files.json",
}


class _Sink:
    """Where zipfile writes: keeps the bytes until `take()` hands them to the client (not seekable, so zipfile
    writes each member's sizes after its data)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self._parts, self.size = b"".join(self._parts), [], 0
        return data


async def _write_file(archive: zipfile.ZipFile, sink: _Sink, name: str, records: AsyncIterator[dict],
                      counts: dict[str, int]) -> AsyncIterator[bytes]:
    """Write one JSON array file, yielding the zip's bytes whenever CHUNK of them are ready; count its records."""
    count = 0
    with archive.open(name, mode="w") as out:
        out.write(b"[")
        async for record in records:
            out.write((b",\n" if count else b"\n") + _encoder.encode(record))
            count += 1
            if sink.size >= CHUNK:
                yield sink.take()
        out.write(b"\n]\n")
    counts[name] = count


def files_in_export() -> list[str]:
    return [*(s.file for s in EXPORTED.values()), SUGGESTIONS_FILE]


async def start(ctx: Context, principal: Principal) -> AsyncGenerator[bytes, None]:
    """Check the rate limit (429 before anything is sent), then the zip's bytes in chunks."""
    await ratelimit.hit(ctx, f"export:{principal.member_id}", EXPORT_LIMIT, EXPORT_WINDOW)
    return _stream(ctx, principal.member_id)


async def _from(ctx: Context, collection: str, source: Source, member_id: str) -> AsyncIterator[dict]:
    for query in source.filters(member_id):
        cursor = ctx.db[collection].find(query).sort("_id", 1).batch_size(BATCH)
        async for doc in cursor:
            yield source.shape(doc, member_id)


async def _stream(ctx: Context, member_id: str) -> AsyncGenerator[bytes, None]:
    sink = _Sink()
    counts: dict[str, int] = {}
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for collection, source in EXPORTED.items():
            async for piece in _write_file(archive, sink, source.file, _from(ctx, collection, source, member_id),
                                           counts):
                yield piece
        async for piece in _write_file(archive, sink, SUGGESTIONS_FILE,
                                       suggestions.own_for_export(ctx, member_id, BATCH), counts):
            yield piece
        manifest = {"member_id": member_id, "exported_at": ctx.now(), "files": counts,
                    "not_exported": NOT_EXPORTED}
        archive.writestr("manifest.json", _encoder.encode(manifest))
    yield sink.take()

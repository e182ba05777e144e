"""CSV and xlsx import of members into one org (API.md §4).

Every row is validated on its own, all of them before anything is written; a bad row is reported
with its row number and nothing of it is written; a good row is written whole (its member and its
audit entry), in batches of bulk writes, each batch one transaction (`run`). A phone given twice in
one file is taken by its first row. A phone that belongs to a
member outside the caller's scope is reported as taken, without saying where; one that belongs to
a visible member the caller may not act on (members.require_may_manage: say, an administrator of
the root who sits in this branch) is reported as forbidden and left as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
from openpyxl import load_workbook
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from schemas.common import sent_fields
from schemas.members import MemberCreate
from server import audit, members, orgs
from server.context import Context
from server.db import find_in, transaction
from server.errors import ApiError
from server.scope import Principal

MAX_ROWS = 5000
LOOKUP_BATCH = 500  # phones per `$in` read of the members they belong to
WRITE_BATCH = 500  # rows per transaction
COLUMNS = ("name", "phone", "gender", "birth_date", "party_status", "tags")
# Organisers export from spreadsheets with Chinese headers and values; accept both.
HEADER_ALIASES = {
    "姓名": "name", "手机号": "phone", "手机": "phone", "电话": "phone", "性别": "gender",
    "出生日期": "birth_date", "政治面貌": "party_status", "党员状态": "party_status", "标签": "tags",
}
VALUE_ALIASES = {
    "gender": {"男": "male", "女": "female"},
    "party_status": {"正式党员": "full", "预备党员": "probationary", "群众": "none", "非党员": "none"},
}
XLSX_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ImportedMember(MemberCreate, forbid_unknown_fields=True, kw_only=True):
    """The same rules as POST /members; the org comes from the URL."""

    org_id: str = ""


def _rows_from_csv(body: bytes) -> Iterator[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):  # Excel in China saves CSV as GB18030
        try:
            text = body.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ApiError(422, "invalid_request", "The CSV file is neither UTF-8 nor GB18030 text.")
    yield from csv.reader(io.StringIO(text))


def _rows_from_xlsx(body: bytes) -> Iterator[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except Exception:  # openpyxl raises many types for a corrupt file
        raise ApiError(422, "invalid_request", "The spreadsheet could not be read as xlsx.") from None
    sheet = workbook.worksheets[0]
    for row in sheet.iter_rows(values_only=True):
        yield [_cell_text(v) for v in row]


def _cell_text(value: object) -> str:
    """A cell as the organiser sees it: a date as a day, and a whole number Excel stores as a float
    (a phone typed into a number cell reads 13812345678.0) without its ".0"."""
    if value is None:
        return ""
    if hasattr(value, "date"):
        return value.date().isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse(content_type: str, body: bytes) -> list[tuple[int, dict]]:
    """(row number as a spreadsheet shows it, raw record) for each non-empty data row."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in XLSX_TYPES or body[:2] == b"PK":
        rows = _rows_from_xlsx(body)
    elif kind in ("text/csv", "application/csv", "text/plain"):
        rows = _rows_from_csv(body)
    else:
        raise ApiError(415, "unsupported_media_type", "Send text/csv or an xlsx spreadsheet.")
    header = next(rows, None)
    if header is None:
        raise ApiError(422, "invalid_request", "The file is empty.")
    names = [HEADER_ALIASES.get(h.strip(), h.strip().lower()) for h in header]
    missing = [c for c in COLUMNS[:5] if c not in names]
    if missing:
        raise ApiError(422, "invalid_request", f"Missing columns: {', '.join(missing)}.",
                       errors=[{"field": c, "message": "column missing"} for c in missing])
    records = []
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(records) >= MAX_ROWS:
            raise ApiError(422, "invalid_request", f"At most {MAX_ROWS} rows per import.")
        records.append((number, {n: (row[i].strip() if i < len(row) else "") for i, n in enumerate(names)
                                 if n in COLUMNS}))
    return records


def normalise(raw: dict) -> dict:
    """Turn one raw row into a validated member body, or raise ValueError with a readable message."""
    record = dict(raw)
    for column, aliases in VALUE_ALIASES.items():
        if column in record:
            record[column] = aliases.get(record[column], record[column].lower())
    tags = record.get("tags", "")
    record["tags"] = [t.strip() for t in tags.replace("；", ";").replace("|", ";").split(";") if t.strip()]
    try:
        body = msgspec.convert(record, ImportedMember, strict=False)
        body.phone = members.normalise_phone(body.phone)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    except ApiError as exc:
        raise ValueError(exc.detail) from None
    return sent_fields(body, dates_as_text=True)


@dataclass
class _Plan:
    """What an import will write, decided before anything is: new members, updates, and the rows refused."""

    inserts: list[tuple[int, dict]] = field(default_factory=list)
    updates: list[tuple[int, dict, dict]] = field(default_factory=list)  # (row, member, changes)
    errors: list[dict] = field(default_factory=list)


async def _plan(ctx: Context, principal: Principal, org: dict, content_type: str, body: bytes) -> _Plan:
    """Validate every row and decide each one, reading the members its phones name in a few `$in` reads."""
    plan = _Plan()
    records: list[tuple[int, dict]] = []
    first_row: dict[str, int] = {}
    for number, raw in parse(content_type, body):
        try:
            record = normalise(raw)
        except ValueError as exc:
            plan.errors.append({"row": number, "message": str(exc)})
            continue
        record.pop("org_id", None)
        if record["phone"] in first_row:
            earlier = first_row[record["phone"]]
            plan.errors.append({"row": number, "message": f"phone_taken: the phone of row {earlier}"})
            continue
        first_row[record["phone"]] = number
        records.append((number, record))
    existing: dict[str, dict] = {}
    phones = sorted(first_row)
    for doc in await find_in(ctx.db[members.COLLECTION], "phone", phones, chunk=LOOKUP_BATCH):
        existing[doc["phone"]] = doc
    path = orgs.full_path(org)
    for number, record in records:
        found = existing.get(record["phone"])
        if found is None:
            plan.inserts.append((number, members._new_member({**record, "org_id": org["_id"]}, org, ctx.now())))
        elif not principal.organises(found["org_path"]):
            plan.errors.append({"row": number, "message": "phone_taken: another member has this phone"})
        else:
            try:
                await members.require_may_manage(ctx, principal, found)
            except ApiError as exc:
                plan.errors.append({"row": number, "message": f"{exc.code}: {exc.detail}"})
                continue
            changes = {k: record[k] for k in ("name", "gender", "birth_date", "party_status", "tags")}
            changes.update(org_id=org["_id"], org_path=path, updated_at=ctx.now())
            plan.updates.append((number, found, changes))
    return plan


#: What a member's import entry shows of them (the phone is masked by server.audit).
AUDITED = ("name", "phone", "org_id", "gender", "birth_date", "party_status", "tags")


def _created_entry(ctx: Context, principal: Principal, doc: dict) -> dict:
    return audit.entry(ctx, actor_id=principal.member_id, action="member.import.create", target_kind="member",
                       target_id=doc["_id"], org_path=doc["org_path"], after={k: doc[k] for k in AUDITED})


def _updated_entry(ctx: Context, principal: Principal, member: dict, changes: dict) -> dict:
    logged = [k for k in changes if k not in ("org_path", "updated_at")]
    return audit.entry(ctx, actor_id=principal.member_id, action="member.import.update", target_kind="member",
                       target_id=member["_id"], org_path=changes["org_path"],
                       before={k: member.get(k) for k in logged}, after={k: changes[k] for k in logged})


async def _write(ctx: Context, principal: Principal, inserts: list[dict], updates: list[tuple[dict, dict]]) -> None:
    """One batch in one transaction: the members, their changes and their audit entries, or none of them."""

    async def work(txn):
        entries = [_created_entry(ctx, principal, d) for d in inserts]
        entries += [_updated_entry(ctx, principal, m, c) for m, c in updates]
        if inserts:
            await ctx.db[members.COLLECTION].insert_many(inserts, session=txn)
        if updates:
            await ctx.db[members.COLLECTION].bulk_write(
                [UpdateOne({"_id": m["_id"]}, {"$set": c}) for m, c in updates], session=txn)
        await audit.append_many(ctx, entries, txn=txn)

    await transaction(ctx, work)


async def run(ctx: Context, principal: Principal, org_id: str, content_type: str, body: bytes) -> dict:
    """Validate and decide every row first, then write in batches of WRITE_BATCH rows, each batch one
    transaction. A batch refused because a phone was taken meanwhile (a member created at the same
    time) is written again row by row, so only that row is reported; a failure of the database leaves
    the batches before it written whole and nothing of the rest."""
    org = await orgs.require_role(ctx, principal, org_id, "organiser")
    plan = await _plan(ctx, principal, org, content_type, body)
    created = updated = 0
    rows = [(n, doc, None) for n, doc in plan.inserts] + [(n, m, c) for n, m, c in plan.updates]
    rows.sort(key=lambda row: row[0])
    for start in range(0, len(rows), WRITE_BATCH):
        batch = rows[start:start + WRITE_BATCH]
        try:
            await _write(ctx, principal, [d for _, d, c in batch if c is None], [(m, c) for _, m, c in batch if c])
            written = batch
        except (DuplicateKeyError, BulkWriteError):
            written = []
            for row in batch:
                number, doc, changes = row
                try:
                    await _write(ctx, principal, [doc] if changes is None else [], [(doc, changes)] if changes else [])
                except (DuplicateKeyError, BulkWriteError):
                    plan.errors.append({"row": number, "message": "phone_taken: another member has this phone"})
                    continue
                written.append(row)
        for _, doc, changes in written:
            if changes is None:
                created += 1
            else:
                updated += 1
                members.forget_principal(ctx, doc["_id"])
    plan.errors.sort(key=lambda e: e["row"])
    return {"created": created, "updated": updated, "errors": plan.errors}

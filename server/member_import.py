"""CSV and xlsx import of members into one org (API.md §4).

Every row is validated on its own; a bad row is reported with its row number and nothing of it
is written; a good row is written whole (one insert or one update). A phone that belongs to a
member outside the caller's scope is reported as taken, without saying where; one that belongs to
a visible member the caller may not act on (members.require_may_manage: say, an administrator of
the root who sits in this branch) is reported as forbidden and left as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import msgspec
from openpyxl import load_workbook
from pymongo.errors import DuplicateKeyError

from schemas.common import sent_fields
from schemas.members import MemberCreate
from server import audit, members, orgs
from server.context import Context
from server.errors import ApiError
from server.scope import Principal

MAX_ROWS = 5000
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
    for field, aliases in VALUE_ALIASES.items():
        if field in record:
            record[field] = aliases.get(record[field], record[field].lower())
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


async def run(ctx: Context, principal: Principal, org_id: str, content_type: str, body: bytes) -> dict:
    org = await orgs.require_role(ctx, principal, org_id, "organiser")
    created = updated = 0
    errors = []
    for number, raw in parse(content_type, body):
        try:
            record = normalise(raw)
        except ValueError as exc:
            errors.append({"row": number, "message": str(exc)})
            continue
        record.pop("org_id", None)
        existing = await ctx.db[members.COLLECTION].find_one({"phone": record["phone"]})
        if existing is None:
            doc = members._new_member({**record, "org_id": org["_id"]}, org, ctx.now())
            try:
                await ctx.db[members.COLLECTION].insert_one(doc)
            except DuplicateKeyError:
                errors.append({"row": number, "message": "phone_taken: another member has this phone"})
                continue
            created += 1
            await audit.record(ctx, actor_id=principal.member_id, action="member.import.create",
                               target_kind="member", target_id=doc["_id"], org_path=doc["org_path"],
                               after={k: doc[k] for k in ("name", "phone", "org_id", "gender", "birth_date",
                                                          "party_status", "tags")})
        elif not principal.organises(existing["org_path"]):
            errors.append({"row": number, "message": "phone_taken: another member has this phone"})
        else:
            try:
                await members.require_may_manage(ctx, principal, existing)
            except ApiError as exc:
                errors.append({"row": number, "message": f"{exc.code}: {exc.detail}"})
                continue
            changes = {k: record[k] for k in ("name", "gender", "birth_date", "party_status", "tags")}
            changes.update(org_id=org["_id"], org_path=orgs.full_path(org), updated_at=ctx.now())
            await ctx.db[members.COLLECTION].update_one({"_id": existing["_id"]}, {"$set": changes})
            members.forget_principal(ctx, existing["_id"])
            updated += 1
            logged = [k for k in changes if k not in ("org_path", "updated_at")]
            await audit.record(ctx, actor_id=principal.member_id, action="member.import.update",
                               target_kind="member", target_id=existing["_id"], org_path=changes["org_path"],
                               before={k: existing.get(k) for k in logged}, after={k: changes[k] for k in logged})
    return {"created": created, "updated": updated, "errors": errors}

"""The member import in batches: every row validated before anything is written, then bulk writes in
transactions of WRITE_BATCH rows; a failure in a batch leaves nothing of it written (no member without
its audit entry), and two imports of the same people at once create each of them once."""

from __future__ import annotations

from server import member_import
from tests.builders import fail_writes

CSV = {"Content-Type": "text/csv"}
HEADER = "name,phone,gender,birth_date,party_status\n"


def rows(count: int, first: int = 0) -> str:
    return "".join(f"导入{i},1350{i:07d},male,1990-01-01,full\n" for i in range(first, first + count))


def imported(api, phones_from: int, count: int) -> tuple[int, int]:
    phones = [f"1350{i:07d}" for i in range(phones_from, phones_from + count)]
    docs = api.run(api.db.members.find({"phone": {"$in": phones}}).to_list())
    entries = api.run(api.db.audit_log.count_documents(
        {"action": "member.import.create", "target_id": {"$in": [d["_id"] for d in docs]}}))
    return len(docs), entries


def test_an_import_over_several_batches_writes_every_good_row_with_its_audit_entry(api):
    branch = api.org("大支部")
    organiser = api.organiser(branch["id"])
    count = member_import.WRITE_BATCH + 20
    body = HEADER + rows(count) + "坏,not-a-phone,male,1990-01-01,full\n" + rows(1, first=3)
    result = organiser.ok("POST", f"/orgs/{branch['id']}/members/import", content=body.encode(), headers=CSV)
    assert result["created"] == count and result["updated"] == 0
    assert [e["row"] for e in result["errors"]] == [count + 2, count + 3]
    assert "row 5" in result["errors"][1]["message"]  # the phone of an earlier row: the first row keeps it
    assert imported(api, 0, count) == (count, count)
    again = organiser.ok("POST", f"/orgs/{branch['id']}/members/import", content=(HEADER + rows(3)).encode(),
                         headers=CSV)
    assert again == {"created": 0, "updated": 3, "errors": []}


def test_a_failure_in_the_middle_of_a_batch_writes_nothing_of_it(api, monkeypatch):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    body = (HEADER + rows(30)).encode()
    with monkeypatch.context() as patch:
        fail_writes(patch, "audit_log", "insert_many")  # after the members were inserted, in the same batch
        failed = organiser.post(f"/orgs/{branch['id']}/members/import", content=body, headers=CSV)
        assert failed.status == 500 and failed.code == "internal_error"
    assert imported(api, 0, 30) == (0, 0)
    result = organiser.ok("POST", f"/orgs/{branch['id']}/members/import", content=body, headers=CSV)
    assert result == {"created": 30, "updated": 0, "errors": []}
    assert imported(api, 0, 30) == (30, 30)


def test_two_imports_of_the_same_people_at_once_create_each_once(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    body = (HEADER + rows(40)).encode()
    path = f"/orgs/{branch['id']}/members/import"
    headers = {**CSV, "Authorization": f"Bearer {organiser.token}"}
    results = api.concurrently([lambda http: http.post(path, content=body, headers=headers)] * 2)
    assert [r.status for r in results] == [200, 200]
    outcomes = [r.json for r in results]
    assert sum(o["created"] for o in outcomes) == 40
    for outcome in outcomes:  # each row created by one import, updated or refused (phone taken) by the other
        assert outcome["created"] + outcome["updated"] + len(outcome["errors"]) == 40
    assert imported(api, 0, 40) == (40, 40)

"""Idempotency-Key (API.md §1), exercised on POST /members and POST /orgs."""

from __future__ import annotations


def member_body(api, org_id: str, phone: str) -> dict:
    return {"name": "幂等", "phone": phone, "org_id": org_id, "gender": "male", "birth_date": "1990-01-01",
            "party_status": "full"}


def test_replay_returns_the_first_response(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    body = member_body(api, branch["id"], "13312340001")
    first = organiser.post("/members", json=body, headers={"Idempotency-Key": "k-1"})
    second = organiser.post("/members", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status == second.status == 201
    assert first.json == second.json
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert api.run(api.db.members.count_documents({"phone": "13312340001"})) == 1


def test_same_key_with_another_body_is_refused(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    organiser.ok("POST", "/members", 201, json=member_body(api, branch["id"], "13312340002"),
                 headers={"Idempotency-Key": "k-2"})
    other = organiser.post("/members", json=member_body(api, branch["id"], "13312340003"),
                           headers={"Idempotency-Key": "k-2"})
    assert other.status == 422 and other.code == "idempotency_key_reused"


def test_refusals_are_replayed_too_and_keys_are_per_member(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    another = api.organiser(branch["id"], "另一位书记")
    taken = member_body(api, branch["id"], "13312340004")
    organiser.ok("POST", "/members", 201, json=taken)
    refused = organiser.post("/members", json=taken, headers={"Idempotency-Key": "k-3"})
    assert refused.status == 409 and refused.code == "phone_taken"
    assert organiser.post("/members", json=taken, headers={"Idempotency-Key": "k-3"}).json["code"] == "phone_taken"
    # The same key from someone else is their own key.
    mine = another.post("/members", json=member_body(api, branch["id"], "13312340005"),
                        headers={"Idempotency-Key": "k-3"})
    assert mine.status == 201


def test_bad_keys_are_422(api):
    branch = api.org("支部")
    response = api.admin.post("/orgs", json={"name": "x", "kind": "group", "parent_id": branch["id"]},
                              headers={"Idempotency-Key": "x" * 65})
    assert response.status == 422 and response.code == "invalid_request"


def test_keys_live_a_day_and_are_unique_per_member(api):
    branch = api.org("支部")
    api.admin.ok("POST", "/orgs", 201, json={"name": "小组", "kind": "group", "parent_id": branch["id"]},
                 headers={"Idempotency-Key": "day"})
    indexes = api.run(api.db.idempotency_keys.index_information())
    assert any(ix.get("expireAfterSeconds") == 86400 for ix in indexes.values())
    assert any(ix.get("unique") and [k for k, _ in ix["key"]] == ["member_id", "key"] for ix in indexes.values())


def test_concurrent_requests_with_one_key_create_one_thing(api):
    branch = api.org("支部")
    organiser = api.organiser(branch["id"])
    body = member_body(api, branch["id"], "13312340009")
    headers = {"Authorization": f"Bearer {organiser.token}", "Idempotency-Key": "burst"}
    responses = api.concurrently([lambda http: http.post("/members", json=body, headers=headers)
                                  for _ in range(20)])
    statuses = sorted(r.status for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = [r for r in responses if r.status == 201]
    assert created and all(r.json == created[0].json for r in created)
    assert all(r.code == "request_in_progress" for r in responses if r.status == 409)
    assert api.run(api.db.members.count_documents({"phone": "13312340009"})) == 1

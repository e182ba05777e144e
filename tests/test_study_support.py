"""Helpers shared by the study tests (no tests here): a small world, sessions, tokens, check-ins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tests.conftest import Api, Client


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class World:
    branch: dict
    other_branch: dict
    organiser: Client
    members: list[Client]
    outsider: Client
    outsider_organiser: Client


def world(api: Api, members: int = 3) -> World:
    """Branch A with an organiser and `members` members; branch B with one member and its organiser."""
    branch = api.org("第一支部")
    other = api.org("第二支部")
    organiser = api.organiser(branch["id"], "张书记")
    people = [api.member(branch["id"], f"党员{i}") for i in range(members)]
    outsider = api.member(other["id"], "外支部党员")
    outsider_organiser = api.organiser(other["id"], "李书记")
    remember(api, organiser, *people, outsider, outsider_organiser)
    return World(branch, other, organiser, people, outsider, outsider_organiser)


def new_session(api: Api, organiser: Client, org_id: str, *, start_in: timedelta = timedelta(hours=1),
                length: timedelta = timedelta(hours=1), track: str = "group_meeting", title: str = "党小组会",
                **fields) -> dict:
    starts = api.clock.now() + start_in
    body = {"org_id": org_id, "track": track, "title": title, "starts_at": iso(starts),
            "ends_at": iso(starts + length), **fields}
    return organiser.ok("POST", "/study/sessions", 201, json=body)


def qr_token(organiser: Client, session_id: str) -> str:
    return organiser.ok("GET", f"/study/sessions/{session_id}/qr")["token"]


_clients: dict[int, list[Client]] = {}


def remember(api: Api, *clients: Client) -> None:
    _clients.setdefault(id(api), []).extend(clients)


def move_to(api: Api, moment: datetime) -> None:
    """Set the server clock to `moment`, then re-sign every known client (access tokens live 15 min)."""
    delta = moment - api.clock.now()
    api.clock.advance(seconds=delta.total_seconds())
    for client in [api.admin, *_clients.get(id(api), [])]:
        token = api.signer.issue(client.member["id"], api.clock.now(), 900)
        client.token = token
        client.http.headers["Authorization"] = f"Bearer {token}"


def advance(api: Api, **delta: float) -> None:
    move_to(api, api.clock.now() + timedelta(**delta))


def checkin(client: Client, session_id: str, token: str | None, **fields):
    return client.post("/study/checkins", json={"session_id": session_id, "qr_token": token, **fields})


def count(api: Api, collection: str, query: dict) -> int:
    return api.run(api.db[collection].count_documents(query))

"""The demo organisation: 机关党委 with five 党支部 (one with two 党小组), their members, the branch
secretaries as organisers, staff passwords and a few invite codes not yet used.

Everything goes through the services the handlers call: the first administrator and the root org
through server.bootstrap (as `create-admin` does), then orgs, members, roles and passwords as that
administrator, invites as each branch's secretary.
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from schemas.members import MemberCreate, MemberPatch
from schemas.orgs import OrgCreate
from server import members, orgs
from server.bootstrap import ensure_admin
from server.context import Context
from server.demo.checked import checked
from server.demo.timeline import Timeline
from server.scope import Principal

COMMITTEE = "机关党委"
ADMIN = ("郑国栋", "male", "1971-04-18", ["union_member"])
OFFICE, FINANCE, PERSONNEL, IT, SERVICES = ("办公室党支部", "财务处党支部", "人事处党支部", "信息中心党支部",
                                             "后勤服务中心党支部")
IT_GROUPS = ("第一党小组", "第二党小组")
UNION = ["union_member"]

# (name, gender, birth date, party status, tags): the first of each branch is its secretary (书记).
BRANCHES: dict[str, list[tuple[str, str, str, str, list[str]]]] = {
    OFFICE: [("周建华", "male", "1972-03-09", "full", UNION),
             ("王芳", "female", "1985-07-21", "full", UNION),
             ("刘洋", "male", "1994-11-02", "full", UNION),
             ("李娜", "female", "1991-05-16", "full", UNION),
             ("陈刚", "male", "1968-09-30", "full", [*UNION, "退役军人"]),
             ("吴倩", "female", "1997-02-11", "full", UNION),
             ("孙浩然", "male", "1999-08-25", "probationary", [])],
    FINANCE: [("黄雪梅", "female", "1975-12-03", "full", UNION),
              ("张伟", "male", "1983-06-14", "full", UNION),
              ("赵婷", "female", "1993-04-27", "full", UNION),
              ("徐立新", "male", "1970-01-19", "full", UNION),
              ("马琳", "female", "1989-10-08", "full", UNION),
              ("朱晓东", "male", "1996-03-22", "full", UNION),
              ("胡佳怡", "female", "2000-07-05", "probationary", [])],
    PERSONNEL: [("何建国", "male", "1969-05-28", "full", [*UNION, "退役军人"]),
                ("刘静", "female", "1987-08-17", "full", UNION),
                ("杨帆", "male", "1992-12-01", "full", UNION),
                ("郭蕾", "female", "1995-09-13", "full", UNION),
                ("罗斌", "male", "1980-02-24", "full", UNION),
                ("孙丽娟", "female", "1978-11-30", "full", UNION)],
    IT: [("林峰", "male", "1982-10-10", "full", UNION)],
    SERVICES: [("杨秀英", "female", "1971-06-06", "full", UNION),
               ("王磊", "male", "1979-03-15", "full", UNION),
               ("郭涛", "male", "1984-12-19", "full", UNION),
               ("周晓燕", "female", "1990-01-26", "full", UNION),
               ("马俊", "male", "1988-07-31", "full", UNION),
               ("高雅琴", "female", "1966-04-02", "full", UNION),
               ("胡振宇", "male", "1997-05-09", "full", UNION)],
}
GROUPS: dict[str, list[tuple[str, str, str, str, list[str]]]] = {
    IT_GROUPS[0]: [("赵鹏", "male", "1990-02-14", "full", UNION),
                   ("张敏", "female", "1993-08-08", "full", UNION),
                   ("吴昊", "male", "1998-12-12", "full", UNION)],
    IT_GROUPS[1]: [("陈丽", "female", "1986-03-03", "full", UNION),
                   ("高翔", "male", "1995-06-18", "full", UNION),
                   ("何雨欣", "female", "2001-09-09", "probationary", [])],
}
RETIRED = "高雅琴"  # deactivated later in the story: retired, her membership moved to her community
INVITED = ("孙浩然", "胡佳怡", "何雨欣", "吴昊")  # new to the mini-program: codes issued, not yet used
MOBILE_PREFIXES = ("133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159", "177",
                   "186", "187", "188", "189", "199")
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/l/I


def new_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(14))


@dataclass
class Organisation:
    """What the rest of the demo builds on: orgs and people by name, and who organises what."""

    orgs: dict[str, dict] = field(default_factory=dict)
    people: dict[str, dict] = field(default_factory=dict)
    branch_of: dict[str, str] = field(default_factory=dict)  # person → branch name
    secretaries: dict[str, str] = field(default_factory=dict)  # branch name → person
    admin: str = ADMIN[0]
    passwords: dict[str, str] = field(default_factory=dict)  # person → password (staff only)
    invites: dict[str, str] = field(default_factory=dict)  # person → unused invite code

    def principal(self, name: str) -> Principal:
        return Principal.from_member(self.people[name])

    def secretary_of(self, branch: str) -> Principal:
        return self.principal(self.secretaries[branch])

    def members_of(self, branch: str) -> list[str]:
        """Active people of the branch's subtree (its groups too), the secretary first, in roster order."""
        return [n for n, b in self.branch_of.items() if b == branch and self.people[n]["active"]]

    def everyone(self) -> list[str]:
        """Every active member, the administrator included."""
        return [n for n, doc in self.people.items() if doc["active"]]


def phones() -> list[str]:
    """Distinct, realistic and the same on every run (so screenshots and docs stay true)."""
    rng = random.Random(2026)
    numbers: list[str] = []
    while len(numbers) < 60:
        number = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if number not in numbers:
            numbers.append(number)
    return numbers


async def build(ctx: Context, tl: Timeline, password: str | None) -> Organisation:
    """The organisation as it stood when it started using Branchline (before last month began)."""
    out = Organisation()
    numbers = iter(phones())
    tl.go(tl.at(tl.last_month, 9) - timedelta(days=5))
    name, gender, born, tags = ADMIN
    out.passwords[name] = password or new_password()
    admin = await ensure_admin(ctx, next(numbers), out.passwords[name], name, COMMITTEE, only_if_none=False)
    if admin is None:
        raise RuntimeError("another process created the administrator at the same moment")
    admin = await members.patch(ctx, Principal.from_member(admin), admin["_id"],
                                checked(MemberPatch, {"gender": gender, "birth_date": born, "tags": tags},
                                        keep=()))
    out.people[name] = admin
    out.orgs[COMMITTEE] = await orgs.get(ctx, admin["org_id"])
    boss = out.principal(name)

    async def add_org(org_name: str, kind: str, parent: str) -> dict:
        body = checked(OrgCreate, {"name": org_name, "kind": kind, "parent_id": out.orgs[parent]["_id"]}, keep=())
        out.orgs[org_name] = await orgs.create(ctx, boss, body["name"], body["kind"], body["parent_id"])
        return out.orgs[org_name]

    async def add_person(row: tuple, org_name: str, branch: str) -> None:
        person, gender, born, status, tags = row
        body = {"name": person, "phone": next(numbers), "org_id": out.orgs[org_name]["_id"], "gender": gender,
                "birth_date": born, "party_status": status, "tags": tags}
        out.people[person] = await members.create(ctx, boss, checked(MemberCreate, body, keep=()))
        out.branch_of[person] = branch

    tl.go(tl.at(tl.last_month, 9, 30) - timedelta(days=5))
    for branch, rows in BRANCHES.items():
        await add_org(branch, "branch", COMMITTEE)
        for row in rows:
            await add_person(row, branch, branch)
        out.secretaries[branch] = rows[0][0]
    for group, rows in GROUPS.items():
        await add_org(group, "group", IT)
        for row in rows:
            await add_person(row, group, IT)

    for branch, secretary in out.secretaries.items():
        grant = [{"role": "organiser", "org_id": out.orgs[branch]["_id"]}]
        out.people[secretary] = await members.set_roles(ctx, boss, out.people[secretary]["_id"], grant)
        out.passwords[secretary] = password or new_password()
        await members.set_password(ctx, boss, out.people[secretary]["_id"], out.passwords[secretary])
    return out


async def retire(ctx: Context, out: Organisation) -> None:
    """A member leaves: her secretary deactivates her (she stays in past records, not in new lists)."""
    branch = out.branch_of[RETIRED]
    out.people[RETIRED] = await members.patch(ctx, out.secretary_of(branch), out.people[RETIRED]["_id"],
                                              {"active": False})


async def invite(ctx: Context, out: Organisation) -> None:
    """Invite codes (valid 7 days from now) for members who have not bound the mini-program yet."""
    for person in INVITED:
        code, _ = await members.create_invite(ctx, out.secretary_of(out.branch_of[person]), out.people[person]["_id"])
        out.invites[person] = code


"""`python -m server demo` (API.md §12): a realistic organisation in an empty database, so that a new
user can sign in to the console and look around.

It refuses a database that holds members (nothing is written then). Otherwise it tells a story that
begins a few days before last month, through the services the handlers call, each with a Principal, so
every rule and invariant holds as for data entered by hand (org paths, feed sequence, counters, audit
entries): events in the past are made with the context's clock moved to their moment (timeline.py),
events to come are made now with their times ahead. Names and phones are the same on every run;
passwords and invite codes are new.

- org: 机关党委, its branches and groups, members, secretaries (organisers), passwords, invite codes;
- study: the "四个五" scheme, sessions past and to come with attendance and requests, self-study,
  last month's warnings;
- activities: 群心驿站 activities in every programme, with sign-ups, a waitlist and feedback;
- announcements: a pinned must-read with receipts, a scheduled one, an expired one.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.context import Context
from server.demo import activities, announcements, org, study
from server.demo.timeline import Timeline
from server.feed import background as feed_background
from server.members import COLLECTION as MEMBERS


class DatabaseNotEmpty(Exception):
    """The database already holds members: the demo writes only into an empty one."""


@dataclass(frozen=True)
class Account:
    role: str  # "admin" or "organiser"
    name: str
    org_name: str
    phone: str
    password: str


@dataclass(frozen=True)
class Result:
    accounts: list[Account]
    invites: dict[str, str]  # member name → unused invite code
    members: int
    branches: int


async def fill(ctx: Context, password: str | None = None) -> Result:
    """Build the demo organisation; `password` for every staff account, else a new one each."""
    held = await ctx.db[MEMBERS].count_documents({}, limit=1000)
    if held:
        raise DatabaseNotEmpty(f"the database already holds {held} member(s)")
    tl = Timeline(ctx)
    try:
        people = await org.build(ctx, tl, password)
        await study.set_scheme(ctx, tl, people)
        await study.last_month_meetings(ctx, tl, people)
        await study.recent_sessions(ctx, tl, people)
        tl.go(tl.days_from_now(-4, 17))
        await org.retire(ctx, people)
        await study.self_study(ctx, tl, people)
        await activities.build(ctx, tl, people)
        await announcements.build(ctx, tl, people)
        await study.upcoming_sessions(ctx, tl, people)
        tl.back_to_now()
        await org.invite(ctx, people)
        await study.warnings(ctx, tl, people)
        await feed_background.materialise_due(ctx)  # what expired meanwhile leaves the feed now
    finally:
        tl.back_to_now()
    staff = [Account("admin", people.admin, org.COMMITTEE, people.people[people.admin]["phone"],
                     people.passwords[people.admin])]
    staff += [Account("organiser", name, branch, people.people[name]["phone"], people.passwords[name])
              for branch, name in people.secretaries.items()]
    return Result(accounts=staff, invites=dict(people.invites), members=len(people.people),
                  branches=len(people.secretaries))

"""Where activities and their feedback are kept: the collections and their indexes.

An activity stores `org_path` (its org's path plus the org), so "members see published activities in
their org's ancestors or subtree" is one indexed filter (server/activities/visibility.py). Its sign-ups
are server/signups.py's.
"""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING, IndexModel

from server import signups
from server.db import indexes

COLLECTION = signups.ACTIVITIES
FEEDBACK = "activity_feedback"

indexes(
    COLLECTION,
    IndexModel([("org_path", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_id", ASCENDING), ("listed", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("org_path", ASCENDING), ("listed", ASCENDING), ("_id", DESCENDING)]),
    IndexModel([("programme", ASCENDING), ("starts_at", ASCENDING)]),
)
indexes(FEEDBACK, IndexModel([("activity_id", ASCENDING), ("member_id", ASCENDING)], unique=True))

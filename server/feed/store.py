"""Where the feed is stored: its collections and the indexes its queries use.

`feed_items`: one document per feed item; its audience is either an org subtree (`audience_org`: a
member sees it when that org is in their `org_path`) or an explicit list of `members`.
`feed_removals`: when a live item's audience shrinks, one record for each member or org that lost
it, with its own sequence number, so they get exactly one delete (later edits send them nothing).
`feed_reads`: a member's read (and acknowledgement) of an item. `feed_counter`: the sequence
(server/feed/sequence.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from server.db import indexes

ITEMS = "feed_items"
REMOVALS = "feed_removals"
READS = "feed_reads"
COUNTER = "feed_counter"

UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # stored times are after it: a lower bound for a range

indexes(
    ITEMS,
    IndexModel([("audience_org", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("members", ASCENDING), ("seq", ASCENDING)]),
    # sync pages (server/feed/sync.py changed_queries) and /feed pages (reading.feed_queries): SecantusDB
    # uses an index only when it holds every field of the filter
    IndexModel([("audience_org", ASCENDING), ("ever_live", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("members", ASCENDING), ("ever_live", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("audience_org", ASCENDING), ("state", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("members", ASCENDING), ("state", ASCENDING), ("seq", ASCENDING)]),
    IndexModel([("audience_org", ASCENDING), ("state", ASCENDING), ("pinned", ASCENDING),
                ("published_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("members", ASCENDING), ("state", ASCENDING), ("pinned", ASCENDING),
                ("published_at", DESCENDING), ("_id", DESCENDING)]),
    IndexModel([("seq", ASCENDING)]),
    IndexModel([("kind", ASCENDING), ("ref_id", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("published_at", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("expires_at", ASCENDING)]),
    IndexModel([("state", ASCENDING), ("deleted_at", ASCENDING)]),
    IndexModel([("expires_at", ASCENDING)]),
)
indexes(REMOVALS, IndexModel([("member_id", ASCENDING), ("seq", ASCENDING)], sparse=True),
        IndexModel([("org_id", ASCENDING), ("seq", ASCENDING)], sparse=True), IndexModel([("seq", ASCENDING)]),
        IndexModel([("at", ASCENDING)]))
indexes(READS, IndexModel([("member_id", ASCENDING), ("item_id", ASCENDING)]),
        IndexModel([("item_id", ASCENDING)]), IndexModel([("seq", ASCENDING)]))

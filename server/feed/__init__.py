"""The personal feed: announcements, activities, study sessions and notices, and what sync reads.

Each module answers one question:
- `sequence`: why sync never skips a change (the counter, its epochs, this process's position).
- `store`: where the feed is kept (collections, indexes).
- `writing`: how an item is published, retracted or read, and a notice sent (who may call it: there).
- `reading`: who sees an item, how it is rendered, unread counts, `/feed` pages.
- `tokens`: what a sync token holds, and how it is signed and checked.
- `sync`: what a sync answers (moves, shared windows, long-polls).
- `background`: what each process does on its own (counter poller, scheduled publication and
  expiry, tombstone purge).
"""

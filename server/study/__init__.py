"""Study (API.md §5): what each module answers.

- schemes: which study scheme applies to an org (its own, the nearest ancestor's, or the shipped default).
- sessions: a study session's life (create, update, cancel), who sees it, its attendees, its QR and feed item;
  it owns the attendance collection and its unique (session, member) index.
- attendance: an organiser's view and changes: the roster, manual marks, leave and make-up requests, and the
  append-only check-in event log.
- checkins: a member checking in to a session, and logging self-study under the daily cap.
- progress: what a member or an org achieved over a period against its scheme, and the exports.
- rectification: warnings raised by a scan of a period and their 整改 → 销号 steps (not named `warnings`:
  importing it would hide the standard library module of that name in the importer).

Each imports only those listed before it, so the package has no import cycle.
"""

"""群心驿站 activities (API.md §6): what each module answers.

An activity goes draft → published → cancelled. The capacity mechanism (never overbook, gap-free
waitlist, promotion, group commit) is server/signups.py; the operations here open its transaction and
read top-down: scope, then the rules in order, then the change of places, then what members are told.

- store: where activities and their feedback are kept (collections, indexes).
- visibility: who sees an activity and who manages it (anything out of scope is 404 activity_not_found).
- rules: the rules an operation checks, one named predicate each (`require_not_cancelled`, `require_open`, ...).
- notices: what members are told: the activity's feed item, and notices of promotion and cancellation.
- checkin: who is present: the QR token, checking in, and the no-shows once the activity has ended.
- reading: the Activity answer (counts, the caller's sign-up), one activity and lists.
- lifecycle: create, edit (capacity changes promote), publish, cancel.
- signing_up: a member signing up and leaving.
- roster: who signed up, as JSON, CSV or xlsx (organisers).
- feedback: ratings and comments after the activity.

Each imports only those listed before it, so the package has no import cycle.
"""

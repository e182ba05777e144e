"""Notifications (API.md §9): every event a notice in the member's feed and, where the member allowed it,
a WeChat subscription message (订阅消息).

Each module answers one question:
- `events`: which events there are, the values each offers a template, and how a value is cut to a WeChat field.
- `templates`: which WeChat template each event is sent with (configured by an admin of the root org).
- `grants`: how many messages of each template a member has allowed, spent one per message.
- `preferences`: which events a member has muted.
- `outbox`: how an event becomes notices and deliveries in the transaction of the change (`enqueue`, the one way in).
- `sender`: how deliveries reach WeChat: one sender across processes, each message at most once.
- `deliveries`: what a member and an organiser read of the deliveries.
"""

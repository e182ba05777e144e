"""Which WeChat template each event is sent with (API.md §9), configured by an admin of the root org.

`notification_templates` holds one document per configured event: `{_id: event, template_id, page,
fields: {wechat_key: value_name}, enabled, lead_minutes}`. An event without one is disabled: its
notices still land in the feed, and its deliveries say `wechat: "off"`. `page` is the mini-program
page a tap on the message opens; `{ref_id}` in it is replaced by the id of what the message is about.
"""

from __future__ import annotations

from server import orgs
from server.context import Context
from server.errors import invalid, not_found
from server.notifications.events import COMPATIBLE, EVENTS, mapping_problem
from server.scope import Principal

COLLECTION = "notification_templates"
# What a reminder template starts with when the admin gives no lead time.
DEFAULT_LEAD_MINUTES = 30


def _require_event(event: str):
    spec = EVENTS.get(event)
    if spec is None:
        raise not_found("not_found", "event")
    return spec


def template_out(event: str, doc: dict | None) -> dict:
    spec = EVENTS[event]
    doc = doc or {}
    return {"event": event, "template_id": doc.get("template_id"), "page": doc.get("page", ""),
            "enabled": bool(doc.get("enabled")), "lead_minutes": doc.get("lead_minutes") if spec.reminder else None,
            "fields": doc.get("fields", {}), "values": list(spec.values),
            "fits": {name: sorted(COMPATIBLE[kind]) for name, kind in spec.values.items()}}


async def list_all(ctx: Context) -> list[dict]:
    """Every event with its configuration (what the app passes to wx.requestSubscribeMessage)."""
    docs = {d["_id"]: d for d in await ctx.db[COLLECTION].find({}).to_list()}
    return [template_out(event, docs.get(event)) for event in EVENTS]


async def put(ctx: Context, principal: Principal, event: str, body: dict) -> dict:
    spec = _require_event(event)
    await orgs.require_root_admin(ctx, principal, "notification templates")
    for key, value_name in body["fields"].items():
        problem = mapping_problem(spec, key, value_name)
        if problem:
            raise invalid(f"fields.{key}", problem)
    lead = body.get("lead_minutes")
    if lead is not None and not spec.reminder:
        raise invalid("lead_minutes", f"{event} is not a reminder: it is sent when it happens.")
    doc = {"template_id": body["template_id"], "page": body.get("page", ""), "fields": body["fields"],
           "enabled": body.get("enabled", True),
           "lead_minutes": (lead or DEFAULT_LEAD_MINUTES) if spec.reminder else None,
           "updated_at": ctx.now(), "updated_by": principal.member_id}
    await ctx.db[COLLECTION].update_one({"_id": event}, {"$set": doc}, upsert=True)
    return template_out(event, doc)


async def configured(ctx: Context, event: str, *, txn=None) -> dict | None:
    """The event's template when it is configured and enabled, else None (not sent to WeChat)."""
    doc = await ctx.db[COLLECTION].find_one({"_id": event}, session=txn)
    return doc if doc is not None and doc.get("enabled") and doc.get("template_id") else None


async def enabled_by_template(ctx: Context) -> dict[str, list[str]]:
    """template_id -> the enabled events sent with it (one template may serve several events)."""
    by_template: dict[str, list[str]] = {}
    for doc in await ctx.db[COLLECTION].find({"enabled": True}).to_list():
        if doc.get("template_id"):
            by_template.setdefault(doc["template_id"], []).append(doc["_id"])
    return by_template


def page_for(template: dict, ref_id: str) -> str:
    return (template.get("page") or "").replace("{ref_id}", ref_id)

"""A fake WeChat server on loopback (the real one cannot be reached from tests): login, the access token,
subscription messages and content checks, with WeChat's own error codes.

`GET /sns/jscode2session`: the login code chooses the answer: `ok:<openid>` succeeds, `40029`, `40163`,
`45011` and `-1` return those WeChat error codes, `slow` answers after `slow_seconds`, `down` answers
HTTP 502. Any other code is one WeChat never issued, and gets its answer to that: 40029 (invalid code).

`POST /cgi-bin/stable_token`: issues `tok-1`, `tok-2`, ... valid `expires_in` seconds; every fetch is
recorded in `token_fetches` (`{appid, secret_ok, force_refresh}`). Without `force_refresh` it returns
the current token while it is valid (as WeChat's stable token does). `token_slow` (seconds) delays
the answer, `token_down` answers 502.

`POST /cgi-bin/message/subscribe/send?access_token=`: a token never issued or in `revoked` answers
40001, one in `expired` 42001 (`revoke()` revokes the current token). Otherwise the next programmed
answer is taken, first from `send_answers_for[openid]`, then from `send_answers` (lists, one entry used
per call): an errcode (-1, 43101, 47003, 45009, ...), `"slow"` (answers after `slow_seconds`) or
`"down"` (502). No programmed answer: success. Every call is recorded in `send_calls`
(`{openid, template_id, page, data, answer}`), each message WeChat accepted in `messages`.

`POST /wxa/msg_sec_check?access_token=` (v2: `{content, version: 2, scene, openid}`): the token is
checked as for sending; then the content's markers choose the verdict: text containing `RISKY`
answers `result.suggest` "risky" (label 20001), `REVIEW` "review", anything else "pass"; `SLOW`
answers after `slow_seconds`, `DOWN` (or `sec_check_down` set) answers 502; a request without
version 2 or openid answers 47001 (bad data). Calls are recorded in `sec_checks`.

The state is shared by a test session: `reset(state)` puts everything back, and a slow answer still
sleeping from before a reset then answers 502 without touching the new state.
"""

from __future__ import annotations

import asyncio
import json

import tornado.web

ERRORS = {"40029", "40163", "40226", "45011", "-1"}


def new_state() -> dict:
    return {"calls": [], "slow_seconds": 2.0,
            "tokens": {}, "current_token": None, "token_fetches": [], "expires_in": 7200,
            "token_slow": 0.0, "token_down": False, "revoked": set(), "expired": set(),
            "send_answers": [], "send_answers_for": {}, "send_calls": [], "messages": [],
            "sec_checks": [], "sec_check_down": False, "generation": 0}


def reset(state: dict) -> None:
    generation = state.get("generation", 0) + 1
    state.clear()
    state.update(new_state(), generation=generation)


def revoke(state: dict) -> str:
    """Make WeChat refuse the current token with 40001 from now on; returns it."""
    token = state["current_token"]
    state["revoked"].add(token)
    return token


class FakeHandler(tornado.web.RequestHandler):
    @property
    def state(self) -> dict:
        return self.application.settings["state"]

    def answer(self, reply: dict) -> None:
        self.set_header("Content-Type", "text/plain")  # as WeChat does
        self.write(json.dumps(reply, ensure_ascii=False))

    def body(self) -> dict:
        return json.loads(self.request.body or b"{}")

    async def pause(self, seconds: float) -> bool:
        """Sleep like a slow WeChat; False (answered 502) when the state was reset meanwhile."""
        generation = self.state["generation"]
        await asyncio.sleep(seconds)
        if self.state["generation"] != generation:
            self.set_status(502)
            return False
        return True

    def token_error(self) -> dict | None:
        token = self.get_query_argument("access_token", "")
        if token in self.state["expired"]:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        if token not in self.state["tokens"] or token in self.state["revoked"]:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        return None


class JsCode2Session(FakeHandler):
    async def get(self) -> None:
        state = self.state
        state["calls"].append(dict((k, self.get_query_argument(k)) for k in
                                   ("appid", "secret", "js_code", "grant_type")))
        code = self.get_query_argument("js_code")
        if code.startswith("ok:"):
            openid = code[3:]
            reply = {"openid": openid, "session_key": "secret-session-key-" + openid, "unionid": "u-" + openid}
        elif code == "slow":
            await asyncio.sleep(state["slow_seconds"])
            reply = {"openid": "slowpoke", "session_key": "k"}
        elif code == "down":
            self.set_status(502)
            reply = {}
        else:
            errcode = int(code) if code in ERRORS else 40029
            reply = {"errcode": errcode, "errmsg": f"fake error for code {code}"}
        self.answer(reply)


class StableToken(FakeHandler):
    async def post(self) -> None:
        state, body = self.state, self.body()
        state["token_fetches"].append({"appid": body.get("appid"), "grant_type": body.get("grant_type"),
                                       "secret_ok": body.get("secret") == "wx-test-secret",
                                       "force_refresh": bool(body.get("force_refresh"))})
        if state["token_slow"] and not await self.pause(state["token_slow"]):
            return
        if state["token_down"]:
            self.set_status(502)
            return
        current = state["current_token"]
        if current is None or body.get("force_refresh") or current in state["revoked"]:
            current = state["current_token"] = f"tok-{len(state['tokens']) + 1}"
            state["tokens"][current] = True
        self.answer({"access_token": current, "expires_in": state["expires_in"]})


class SubscribeSend(FakeHandler):
    async def post(self) -> None:
        state, body = self.state, self.body()
        record = {"openid": body.get("touser"), "template_id": body.get("template_id"), "page": body.get("page"),
                  "data": body.get("data"), "answer": 0}
        state["send_calls"].append(record)
        refusal = self.token_error()
        if refusal is not None:
            record["answer"] = refusal["errcode"]
            self.answer(refusal)
            return
        own = state["send_answers_for"].get(record["openid"]) or []
        queue = own if own else state["send_answers"]
        planned = queue.pop(0) if queue else 0
        record["answer"] = planned
        if planned == "slow":
            if not await self.pause(state["slow_seconds"]):
                return
        elif planned == "down":
            self.set_status(502)
            return
        elif planned != 0:
            self.answer({"errcode": planned, "errmsg": f"fake error {planned}"})
            return
        state["messages"].append(record)
        self.answer({"errcode": 0, "errmsg": "ok", "msgid": len(state["messages"])})


class MsgSecCheck(FakeHandler):
    async def post(self) -> None:
        state, body = self.state, self.body()
        content = str(body.get("content", ""))
        state["sec_checks"].append({"content": content, "version": body.get("version"),
                                    "scene": body.get("scene"), "openid": body.get("openid")})
        refusal = self.token_error()
        if refusal is not None:
            self.answer(refusal)
            return
        if "SLOW" in content and not await self.pause(state["slow_seconds"]):
            return
        if "DOWN" in content or state["sec_check_down"]:
            self.set_status(502)
            return
        if body.get("version") != 2 or not body.get("openid"):
            self.answer({"errcode": 47001, "errmsg": "data format error"})
            return
        suggest, label = ("risky", 20001) if "RISKY" in content else ("review", 100) if "REVIEW" in content \
            else ("pass", 100)
        self.answer({"errcode": 0, "errmsg": "ok", "trace_id": "fake",
                     "result": {"suggest": suggest, "label": label},
                     "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest, "label": label}]})


def make_fake_wechat() -> tornado.web.Application:
    return tornado.web.Application([(r"/sns/jscode2session", JsCode2Session),
                                    (r"/cgi-bin/stable_token", StableToken),
                                    (r"/cgi-bin/message/subscribe/send", SubscribeSend),
                                    (r"/wxa/msg_sec_check", MsgSecCheck)],
                                   state=new_state())

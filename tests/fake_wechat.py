"""A fake WeChat `jscode2session` endpoint on loopback (the real one cannot be reached from tests).

The login code chooses the answer: `ok:<openid>` succeeds, `40029`, `40163`, `45011` and `-1`
return those WeChat error codes, `slow` answers after `slow_seconds`, `down` answers HTTP 502. Any other
code is one WeChat never issued, and gets its answer to that: 40029 (invalid code).
"""

from __future__ import annotations

import asyncio
import json

import tornado.web

ERRORS = {"40029", "40163", "40226", "45011", "-1"}


class JsCode2Session(tornado.web.RequestHandler):
    async def get(self) -> None:
        state = self.application.settings["state"]
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
        self.set_header("Content-Type", "text/plain")  # as WeChat does
        self.write(json.dumps(reply))


def make_fake_wechat() -> tornado.web.Application:
    return tornado.web.Application([(r"/sns/jscode2session", JsCode2Session)],
                                   state={"calls": [], "slow_seconds": 2.0})

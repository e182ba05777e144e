"""WeChat's servers, as the API calls them (all through `BRANCHLINE_WECHAT_API_BASE`).

Each module answers one question:
- `login`: who signed in (`jscode2session`), every WeChat error mapped to our contract.
- `transport`: one bounded HTTP call, and the two errors every call may end in (`WechatError`, `WechatUnavailable`).
- `token`: the access token, cached in MongoDB for every process and refreshed by one at a time.
- `api`: the server-API calls (`subscribe_send`, `msg_sec_check`), with their retries.
"""

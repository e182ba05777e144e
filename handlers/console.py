"""The organisers' console (/console/) and the API reference (/docs): static files built by Vite into
console/dist (Settings.console_dir), served by the API process. These are pages, not API operations:
server/app.py lists them in PAGES, apart from ROUTES, so /openapi.json does not describe them.

Caching: Vite names every file under assets/ by its content hash, so those are cached for a year and
never revalidated; index.html and docs.html name the current hashes, so browsers revalidate them on
every load. Any other path under /console/ that is not a file is a client-side (history-mode) route and
answers index.html. Without a build, both pages answer a short page that says how to make one.
"""

from __future__ import annotations

import os

import tornado.web

#: The console loads nothing from another host and runs no inline or eval'd script (its templates are
#: compiled at build time). Inline style attributes stay allowed: Element Plus and ECharts position
#: popups and tooltips with them. Images may be blob: URLs (a QR image or an export fetched with the
#: bearer token) and data: URLs (icons inside the CSS).
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

ASSET_CACHE = "public, max-age=31536000, immutable"

BUILD_HINT = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>管理后台尚未构建 / Console not built</title></head>
<body>
<h1>管理后台尚未构建</h1>
<p>在仓库根目录执行以下命令构建管理后台（需要 Node 20 及以上和 npm），然后刷新本页：</p>
<pre>cd console &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<h1>Console not built</h1>
<p>The API works as usual. To build the console (Node 20+ and npm), run the command above from the
repository root, then reload this page.</p>
</body></html>
"""


def _security_headers(handler: tornado.web.RequestHandler) -> None:
    handler.clear_header("Server")
    handler.set_header("Content-Security-Policy", CSP)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "same-origin")


def _dist(handler: tornado.web.RequestHandler) -> str:
    return str(handler.application.settings["ctx"].settings.console_dir)


def _build_hint(handler: tornado.web.RequestHandler) -> None:
    handler.set_status(503)
    handler.set_header("Content-Type", "text/html; charset=utf-8")
    handler.set_header("Cache-Control", "no-store")
    handler.finish(BUILD_HINT)


class _Page(tornado.web.StaticFileHandler):
    """A file of console/dist with the console's headers; a short text answer for errors."""

    def set_default_headers(self) -> None:
        _security_headers(self)

    def get_cache_time(self, path: str, modified, mime_type: str) -> int:
        return 365 * 24 * 3600 if path.startswith("assets/") else 0

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", ASSET_CACHE if path.startswith("assets/") else "no-cache")

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(f"{status_code} {self._reason}\n")


class ConsoleHandler(_Page):
    """GET /console/{path}: a built file, or index.html for a client-side route."""

    def initialize(self) -> None:
        super().initialize(path=_dist(self))

    async def get(self, path: str, include_body: bool = True) -> None:
        if not os.path.isfile(os.path.join(self.root, "index.html")):
            _build_hint(self)
            return
        await super().get(self._file_for(path), include_body)

    def _file_for(self, path: str) -> str:
        """The file that answers `path`: itself when it is a file inside the build, else index.html
        (a route). A missing asset stays missing (404), so a stale page fails loudly, not with HTML."""
        path = os.path.normpath(path).lstrip("/") if path else ""
        if path in ("", "."):
            return "index.html"
        if path.startswith("assets/"):
            return path
        root = os.path.realpath(self.root)
        candidate = os.path.realpath(os.path.join(root, path))
        inside = candidate.startswith(root + os.sep)
        return path if inside and os.path.isfile(candidate) else "index.html"


class DocsHandler(_Page):
    """GET /docs: the interactive API reference, built with the console (console/docs.html)."""

    def initialize(self) -> None:
        super().initialize(path=_dist(self))

    async def get(self, include_body: bool = True) -> None:
        if not os.path.isfile(os.path.join(self.root, "docs.html")):
            _build_hint(self)
            return
        await super().get("docs.html", include_body)

    def head(self) -> None:  # type: ignore[override]  # the route has no path argument
        return self.get(include_body=False)


class RedirectHandler(tornado.web.RequestHandler):
    """GET / and GET /console: to the console."""

    def set_default_headers(self) -> None:
        _security_headers(self)

    def get(self) -> None:
        self.redirect("/console/", permanent=False)

    head = get

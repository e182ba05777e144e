"""Settings read from the environment, overridable by command-line flags (API.md §2)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo

# A camera scan's qr_text (prefix + a token of about 40 characters) must fit a check-in's qr_token (100).
QR_LINK_PREFIX_MAX = 60
CONTENT_CHECKS = ("off", "wechat")


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./var")
    mongo_uri: str | None = None
    db_name: str = "branchline"
    processes: int = 1
    jwt_secret: str | None = None
    # Older signing secrets still accepted for verification while tokens signed with them expire.
    jwt_previous_secrets: tuple[str, ...] = ()
    jwt_issuer: str = "branchline"
    jwt_audience: str = "branchline-api"
    access_token_seconds: int = 900
    refresh_token_days: int = 30
    timezone: str = "Asia/Shanghai"
    trust_proxy: bool = False
    wechat_appid: str = ""
    wechat_secret: str = ""
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout_seconds: float = 5.0
    # Subscription messages sent per minute at most, by the one sender of all processes
    # (server/notifications/sender.py), and how many at once.
    wechat_send_per_minute: int = 1000
    wechat_send_concurrency: int = 8
    bootstrap_admin_phone: str | None = None
    bootstrap_admin_password: str | None = None
    bootstrap_admin_name: str = "管理员"
    bootstrap_org_name: str = "机关党委"
    # Driver bounds: a dead database answers 503 quickly instead of hanging requests.
    mongo_timeout_ms: int = 3000
    mongo_server_selection_ms: int = 1000
    json_body_limit: int = 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    # The whole request body must arrive within this (Tornado's body_timeout): a stalled or trickling
    # sender cannot hold a connection. 60 s lets a 20 MiB upload through at ~2.8 Mbit/s (a weak 4G uplink).
    body_timeout_seconds: float = 60.0
    # Vite's build of console/ (`npm run build`), served at /console/ and /docs.
    console_dir: Path = Path(__file__).resolve().parent.parent / "console" / "dist"
    # API.md §10: the link registered for "扫普通链接二维码打开小程序"; empty: QR codes carry the app's payload.
    qr_link_prefix: str = ""
    # API.md §10: "wechat" sends members' free text through msg_sec_check (server/content_check.py).
    content_check: str = "off"
    # Check-in locations are dropped from attendance records this long after the check-in (server/retention.py).
    location_retention_days: int = 90
    # How often each process looks for locations past that period (an indexed query, usually finding none).
    retention_sweep_seconds: float = 3600.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        prefix = self.qr_link_prefix
        if len(prefix) > QR_LINK_PREFIX_MAX or not all(33 <= ord(c) < 127 for c in prefix):
            raise ValueError(f"BRANCHLINE_QR_LINK_PREFIX: at most {QR_LINK_PREFIX_MAX} printable ASCII "
                             "characters without spaces")
        if self.content_check not in CONTENT_CHECKS:
            raise ValueError(f"BRANCHLINE_CONTENT_CHECK: one of {', '.join(CONTENT_CHECKS)}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls) -> Settings:
        previous = _env("BRANCHLINE_JWT_PREVIOUS_SECRETS", "") or ""
        return cls(
            host=_env("BRANCHLINE_HOST", "127.0.0.1"),
            port=int(_env("BRANCHLINE_PORT", "8000")),
            data_dir=Path(_env("BRANCHLINE_DATA_DIR", "./var")),
            mongo_uri=_env("BRANCHLINE_MONGO_URI"),
            db_name=_env("BRANCHLINE_DB_NAME", "branchline"),
            processes=int(_env("BRANCHLINE_PROCESSES", "1")),
            jwt_secret=_env("BRANCHLINE_JWT_SECRET"),
            jwt_previous_secrets=tuple(s for s in previous.split(",") if s),
            timezone=_env("BRANCHLINE_TZ", "Asia/Shanghai"),
            trust_proxy=_env("BRANCHLINE_TRUST_PROXY", "0") in ("1", "true", "yes"),
            wechat_appid=_env("BRANCHLINE_WECHAT_APPID", ""),
            wechat_secret=_env("BRANCHLINE_WECHAT_SECRET", ""),
            wechat_api_base=_env("BRANCHLINE_WECHAT_API_BASE", "https://api.weixin.qq.com").rstrip("/"),
            wechat_send_per_minute=int(_env("BRANCHLINE_WECHAT_SEND_PER_MINUTE", "1000")),
            wechat_send_concurrency=int(_env("BRANCHLINE_WECHAT_SEND_CONCURRENCY", "8")),
            bootstrap_admin_phone=_env("BRANCHLINE_BOOTSTRAP_ADMIN_PHONE"),
            bootstrap_admin_password=_env("BRANCHLINE_BOOTSTRAP_ADMIN_PASSWORD"),
            bootstrap_admin_name=_env("BRANCHLINE_BOOTSTRAP_ADMIN_NAME", "管理员"),
            bootstrap_org_name=_env("BRANCHLINE_BOOTSTRAP_ORG_NAME", "机关党委"),
            console_dir=Path(_env("BRANCHLINE_CONSOLE_DIR", str(cls.console_dir))),
            qr_link_prefix=_env("BRANCHLINE_QR_LINK_PREFIX", ""),
            content_check=_env("BRANCHLINE_CONTENT_CHECK", "off"),
            location_retention_days=int(_env("BRANCHLINE_LOCATION_RETENTION_DAYS", "90")),
        )

    def with_overrides(self, **overrides) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def ensure_jwt_secret(settings: Settings) -> Settings:
    """Without a configured secret, generate one once and keep it in the data dir (mode 0600)."""
    if settings.jwt_secret:
        return settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "jwt_secret"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return replace(settings, jwt_secret=path.read_text().strip())

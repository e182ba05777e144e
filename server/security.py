"""Access tokens (PyJWT, HS256 pinned, kid for rotation), password hashing (argon2), secret hashing."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.config import Settings
from server.errors import ApiError

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti"]

_hasher = PasswordHasher()
_pools: dict[int, ThreadPoolExecutor] = {}


def _hash_pool() -> ThreadPoolExecutor:
    """Argon2 is deliberately slow and memory-hard: keep it off the event loop and bounded.
    One pool per process: worker threads do not survive a fork (`--processes N`)."""
    pid = os.getpid()
    if pid not in _pools:
        _pools[pid] = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")
    return _pools[pid]
# Verified against when no account matches, so a wrong phone costs as much time as a wrong password.
_DUMMY_HASH = _hasher.hash("branchline-dummy-password")


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


class TokenSigner:
    """Signs with the current secret; verifies with the current or a previous one, chosen by `kid`."""

    def __init__(self, settings: Settings) -> None:
        assert settings.jwt_secret, "a JWT secret must be configured or generated before start-up"
        self.settings = settings
        self.current_kid = key_id(settings.jwt_secret)
        self.keys = {key_id(s): s for s in (settings.jwt_secret, *settings.jwt_previous_secrets)}
        self._verified: dict[str, dict] = {}

    def issue(self, subject: str, now: datetime, seconds: int, typ: str = "access", **claims) -> str:
        payload = {
            "sub": subject,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=seconds)).timestamp()),
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "jti": random_token(12),
            "typ": typ,
            **claims,
        }
        return jwt.encode(payload, self.keys[self.current_kid], algorithm=ALGORITHM,
                          headers={"kid": self.current_kid})

    # Tokens whose signature already verified (the same string always verifies the same way with
    # this signer's keys); the time and type checks below still run on every call. Saves PyJWT's
    # parsing on hot polling paths (GET /sync).
    _VERIFIED_MAX = 50_000

    def verify(self, token: str, now: datetime, typ: str = "access") -> dict:
        """Return the claims of a valid token of type `typ`, else raise 401 unauthenticated."""
        verified = self._verified
        claims = verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(verified) >= self._VERIFIED_MAX:
                verified.clear()
            verified[token] = claims
        # Expiry and issue time are checked against our clock (tests move it), not the machine's.
        if claims["exp"] <= now.timestamp() or claims["iat"] > now.timestamp() + 60 or claims.get("typ") != typ:
            raise ApiError(401, "unauthenticated", "The token is missing, invalid or expired.")
        return dict(claims)

    def _verify_signature(self, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
            key = self.keys.get(header.get("kid", ""))
            if key is None or header.get("alg") != ALGORITHM:
                raise jwt.InvalidTokenError("unknown key or algorithm")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise ApiError(401, "unauthenticated", "The token is missing, invalid or expired.") from None
        return claims


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), _hasher.hash, password)


async def verify_password(stored_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(_hash_pool(), check)

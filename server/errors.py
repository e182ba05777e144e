"""ApiError: the one exception services raise for a refusal; rendered as RFC 9457 problem+json."""

from __future__ import annotations

from http import HTTPStatus


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        errors: list[dict] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or code)
        self.status = status
        self.code = code
        self.detail = detail or HTTPStatus(status).phrase
        self.errors = errors
        self.headers = headers or {}


def not_found(code: str = "not_found", what: str = "resource") -> ApiError:
    return ApiError(404, code, f"No such {what}.")


def forbidden(detail: str = "You may not do this.") -> ApiError:
    return ApiError(403, "forbidden", detail)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_request", message, errors=[{"field": field, "message": message}])


def conflict(code: str, detail: str) -> ApiError:
    return ApiError(409, code, detail)

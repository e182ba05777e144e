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


#: Every problem `code` the API answers, with its HTTP status (API.md §1: clients switch on the code).
#: The OpenAPI document lists each endpoint's problems by status from this table, so a code raised
#: anywhere must be registered here (schemas/openapi.py refuses an endpoint naming an unknown code).
CODES: dict[str, int] = {
    "bad_request": 400,
    "unauthenticated": 401, "invalid_credentials": 401, "refresh_token_reused": 401, "wechat_code_invalid": 401,
    "forbidden": 403, "not_an_attendee": 403, "not_attended": 403, "not_confirmed": 403, "not_eligible": 403,
    "not_found": 404, "activity_not_found": 404, "announcement_not_found": 404, "file_not_found": 404,
    "request_not_found": 404, "session_not_found": 404, "signup_not_found": 404, "suggestion_not_found": 404,
    "warning_not_found": 404,
    "method_not_allowed": 405,
    "activity_cancelled": 409, "activity_full": 409, "announcement_not_live": 409, "already_checked_in": 409,
    "attendance_conflict": 409,
    "attendees_fixed": 409, "cancel_deadline_passed": 409, "capacity_below_confirmed": 409,
    "checkin_closed": 409, "checkin_not_open": 409, "feedback_exists": 409, "member_inactive": 409,
    "phone_taken": 409, "reminder_too_soon": 409, "request_in_progress": 409, "request_not_pending": 409,
    "request_pending": 409, "session_cancelled": 409, "session_changed": 409, "signup_closed": 409,
    "signup_already_open": 409, "signup_not_open": 409, "suggestion_answered": 409, "member_active": 409,
    "warning_not_open": 409, "warning_not_rectifying": 409,
    "sync_token_expired": 410,
    "body_too_large": 413, "file_too_large": 413,
    "unsupported_media_type": 415,
    "range_not_satisfiable": 416,
    "invalid_request": 422, "content_rejected": 422, "daily_cap_exceeded": 422, "idempotency_key_reused": 422,
    "invite_code_invalid": 422,
    "location_inaccurate": 422, "location_required": 422, "outside_geofence": 422, "qr_expired": 422, "qr_invalid": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "database_unavailable": 503, "service_unavailable": 503, "wechat_unavailable": 503,
}

#: Codes whose status depends on where the missing thing was named: a file id in a request body that
#: is not the caller's upload is invalid input (422), a file id in the path is a missing target (404).
IN_BODY_CODES: dict[str, int] = {"file_not_found": 422}

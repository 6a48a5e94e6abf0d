"""The API's error shape: every 4xx/5xx body is ``{"error": code, "detail": message, "field": name|null}``.

``ApiError`` is raised by the routes and services; ``validation_error`` turns FastAPI/pydantic request
validation errors into the same shape (the first problem, with its field as ``items[0].text``).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 406: "not_acceptable", 408: "timeout", 413: "payload_too_large",
                415: "unsupported_media_type", 422: "invalid_request", 429: "rate_limited",
                500: "internal_error", 501: "not_supported", 503: "unavailable", 504: "timeout"}


class ApiError(Exception):
    """An error response: HTTP status, a short code, a message for people and the offending field."""

    def __init__(self, status: int, error: str, detail: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return error_body(self.error, self.detail, self.field)


def error_body(error: str, detail: str, field: str | None = None) -> dict[str, Any]:
    return {"error": error, "detail": detail, "field": field}


def error_bytes(error: str, detail: str, field: str | None = None) -> bytes:
    return json.dumps(error_body(error, detail, field), ensure_ascii=False).encode("utf-8")


def field_name(loc: Sequence[Any]) -> str | None:
    """("body", "items", 0, "text") -> "items[0].text"; ("query", "mention") -> "mention"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or None


def _line_col(doc: str, pos: int) -> tuple[int, int]:
    line = doc.count("\n", 0, pos) + 1
    return line, pos - (doc.rfind("\n", 0, pos) + 1) + 1


def validation_error(errors: Sequence[Mapping[str, Any]], body: Any = None) -> ApiError:
    """The first request validation problem as an ApiError (400 malformed JSON, else 422)."""
    if not errors:
        return ApiError(422, "invalid_request", "the request is invalid")
    first = errors[0]
    kind = str(first.get("type", ""))
    loc = tuple(first.get("loc", ()))
    if kind == "json_invalid":
        pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
        where = ""
        if pos is not None and isinstance(body, (str, bytes)):
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            line, col = _line_col(text, pos)
            where = f" at line {line}, column {col}"
        why = (first.get("ctx") or {}).get("error", "JSON decode error")
        return ApiError(400, "malformed_json", f"the body is not valid JSON{where}: {why}")
    field = field_name(loc)
    msg = str(first.get("msg", "invalid value"))
    if kind == "missing":
        return ApiError(422, "missing_field", f"{field or 'a field'} is required", field)
    if kind == "too_short" and isinstance(first.get("input"), (list, tuple)):
        return ApiError(422, "empty_list", f"{field or 'the list'} is empty: send at least one entry", field)
    if kind == "extra_forbidden":
        return ApiError(422, "unknown_field", f"unknown field {field!r}; see /docs for the request schema", field)
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "model_attributes_type":
        return ApiError(422, "invalid_type", f"{field or 'the body'}: {msg}", field)
    return ApiError(422, "invalid_value", f"{field or 'the body'}: {msg}", field)

"""Errors as JSON (``ErrorOut``): every bad input is a 4xx naming the field, never a 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import Match

from videogen.errors import FieldError, UserError
from videogen.request import Request as GenerationRequest
from videogen.request import describe_validation_error
from videogen.server.redact import redact_paths
from videogen.server.schemas import ErrorOut, Problem

log = logging.getLogger(__name__)
#: the message for a request body that is not JSON at all, so no field can be named
NOT_JSON = "body is not valid UTF-8 JSON"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class ApiError(HTTPException):
    """An answer other than success, with the field at fault when there is one.

    An HTTPException, so FastAPI lets it through when it is raised while a request body is read.
    """

    def __init__(
        self, status: int, message: str, field: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message, dict(headers) if headers else None)
        self.field = field


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    problems: list[Problem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorOut(error=message, field=field, problems=problems or [])
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def user_error_field(exc: UserError) -> str | None:
    """The field a UserError is about: FieldError says so; other messages start with ``field:``."""
    if isinstance(exc, FieldError):
        return exc.field
    head = str(exc).split(":", 1)[0]
    return head if head in GenerationRequest.model_fields else None


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(UserError, _user_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
    problems = [Problem(field=exc.field, message=exc.detail)] if exc.field else []
    return error_response(exc.status_code, exc.detail, exc.field, problems, exc.headers)


async def _user_error(request: Request, exc: UserError) -> JSONResponse:
    """422; a server path in the message is made relative to the data directory."""
    field = user_error_field(exc)
    message = redact_paths(str(exc), request.app.state.service.settings)
    problems = [Problem(field=field, message=message)] if field else []
    return error_response(422, message, field, problems)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = _request_body_problems(exc.body) or [_problem(err) for err in exc.errors()]
    message = "\n".join(problem.message for problem in problems)
    return error_response(422, message, problems[0].field, problems)


def _request_body_problems(body: Any) -> list[Problem]:
    """Problems of a generation request body, in the words the CLI uses (value and what is allowed)."""
    if not isinstance(body, dict):
        return []
    try:
        GenerationRequest.model_validate(body)
    except ValidationError as exc:
        message = describe_validation_error(exc)
        fields = [".".join(str(part) for part in err["loc"]) or "body" for err in exc.errors()]
        lines = message.split("\n")
        if len(lines) != len(fields):  # a message with a line break of its own: keep it whole
            return [Problem(field=fields[0], message=message)]
        return [Problem(field=f, message=m) for f, m in zip(fields, lines, strict=True)]
    return []


def _problem(err: Mapping[str, Any]) -> Problem:
    """``("query", "limit")`` -> field ``limit``; ``("body", 12)`` (broken JSON at 12) -> ``body``."""
    where, *rest = err["loc"]
    field = ".".join(part for part in rest if isinstance(part, str)) or str(where)
    reason = (err.get("ctx") or {}).get("error")
    detail = f"{err['msg'].lower()} ({reason})" if reason else err["msg"].lower()
    if err["type"] == "json_invalid":
        return Problem(field="body", message=f"{NOT_JSON} ({reason}, at character {rest[0]})")
    if field == "body" and err["type"] == "missing":
        return Problem(field="body", message="body is empty; send a JSON object")
    if field == "body" and err["type"] in ("model_attributes_type", "dict_type"):
        return Problem(field="body", message=f"body is {_json_kind(err.get('input'))}, not a JSON object")
    return Problem(field=field, message=f"{field}: {err.get('input')!r} is not allowed; {detail}")


def _json_kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if exc.status_code == 405:
        return _method_not_allowed(request)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):  # FastAPI's body parse
        return error_response(422, NOT_JSON, "body", [Problem(field="body", message=NOT_JSON)])
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


def _method_not_allowed(request: Request) -> JSONResponse:
    """405 with every method the path takes (Starlette names only those of the first route that
    matches it, though GET and DELETE of one path are two routes)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    message = f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)}"
    return error_response(405, message, headers={"Allow": ", ".join(allowed)})


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")

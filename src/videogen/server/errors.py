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

from videogen.errors import FieldError, UserError
from videogen.request import Request as GenerationRequest
from videogen.request import describe_validation_error
from videogen.server.schemas import ErrorOut, Problem

log = logging.getLogger(__name__)


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


async def _user_error(_request: Request, exc: UserError) -> JSONResponse:
    field = user_error_field(exc)
    problems = [Problem(field=field, message=str(exc))] if field else []
    return error_response(422, str(exc), field, problems)


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
        return Problem(field=field, message=f"{field}: {detail}")
    return Problem(field=field, message=f"{field}: {err.get('input')!r} is not allowed; {detail}")


async def _http_error(_request: Request, exc: HTTPException) -> JSONResponse:
    return error_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")

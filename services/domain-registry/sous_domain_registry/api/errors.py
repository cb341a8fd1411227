"""The error answers of the REST API, documented once here and named by each route.

Every error body has FastAPI's shape, `{"detail": ...}`:

    400 ErrorDetail   a value the route checks is wrong (a backfill's range); the detail says why
    401 ErrorDetail   no bearer token, or one unknown or revoked (auth.py)
    403 ErrorDetail   the token lacks a scope on the domain (auth.py)
    404 ErrorDetail   a named domain, recipe, variation, kitchen or run does not exist
    409 ErrorDetail   the request conflicts with the current state (merging a kitchen)
    413 ErrorDetail   the body is over the limit, before any route reads it (limits.py)
    422 Invalid       FastAPI's validation, or a body that is not strict JSON (limits.py)
        Refusal       specs refused by the catalog's validation (apply, kitchens)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

Responses = dict[int | str, dict[str, Any]]


class ErrorDetail(BaseModel):
    """An error the API answers: what is wrong, in words."""

    detail: str
    """What is wrong, e.g. the missing scope or the unknown name."""


class Problem(BaseModel):
    """One reason a request was invalid."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int]
    """Where: `body`, `path`, `query` or `header`, then the field path."""
    msg: str
    type: str


class Invalid(BaseModel):
    """A request refused before its route ran, one entry per problem."""

    detail: list[Problem]


class Refusal(BaseModel):
    """Why an apply was refused; nothing was changed."""

    detail: str
    errors: list[str]
    """`file: path: reason`, one per problem."""


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": "`Bearer`: send a token issued by POST /v1/tokens.",
        "schema": {"type": "string"},
    }
}

ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": ErrorDetail, "description": "A value is wrong; the detail says which and why."},
    401: {
        "model": ErrorDetail,
        "description": "No bearer token, or one unknown or revoked.",
        "headers": _CHALLENGE,
    },
    403: {"model": ErrorDetail, "description": "The token lacks the scope; the detail names it."},
    404: {"model": ErrorDetail, "description": "Something the request names does not exist."},
    409: {"model": ErrorDetail, "description": "The request conflicts with the current state."},
    413: {
        "model": ErrorDetail,
        "description": "The body is larger than SOUS_DOMAIN_REGISTRY_MAX_BODY_BYTES.",
    },
    422: {
        "model": Refusal | Invalid,
        "description": "The specs were refused (`errors` says why), or the request is invalid.",
    },
}
"""What each error status means; a route's own 422 is FastAPI's unless it refuses specs."""


def errors(*statuses: int) -> Responses:
    """Return the documented error responses of `statuses`, for a route's `responses=`."""
    return {status: ERRORS[status] for status in statuses}

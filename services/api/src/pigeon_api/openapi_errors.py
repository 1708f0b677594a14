"""Completes the OpenAPI document with the error statuses each operation can answer.

Routes name what is particular to them (202, 429 on sign-in, 502/504 where a mail server
or imap-sync is asked); what follows from an operation's shape is added here once, so a
new route cannot forget it:

- every operation under the API prefix: 401 (token), 403 (role, ownership, read-only
  token), 422 (a parameter, header or body), 503 (NATS or PostgreSQL unavailable);
- a path parameter: 404 (no such resource, or one the caller may not see);
- a write (POST, PATCH, PUT, DELETE): 409 (the resource's state does not allow it);
- a request body: 413 (too large) and 415 (wrong media type).
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
WRITE_METHODS = frozenset({"post", "patch", "put", "delete"})
DESCRIPTIONS = {
    401: "missing, invalid or rotated token",
    403: "not allowed: role, ownership, or a read-only token",
    404: "no such resource, or not one the caller may see",
    409: "the resource's state does not allow it",
    413: "body too large",
    415: "unsupported media type",
    422: "invalid input",
    503: "a service the API needs is not available",
}


def statuses_of(path: str, method: str, operation: dict[str, Any], prefix: str) -> set[int]:
    """The error statuses an operation answers by its shape alone."""
    if not path.startswith(prefix):
        return set()
    codes = {422, 503}
    if operation.get("security"):
        codes |= {401, 403}
    if "{" in path:
        codes.add(404)
    if method in WRITE_METHODS:
        codes.add(409)
    if "requestBody" in operation:
        codes |= {413, 415}
    return codes


def complete_error_responses(schema: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Add the missing error statuses to every operation, in the one error shape."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for code in sorted(statuses_of(path, method, operation, prefix)):
                responses.setdefault(
                    str(code),
                    {
                        "description": DESCRIPTIONS[code],
                        "content": {"application/json": {"schema": ERROR_REF}},
                    },
                )
    return schema

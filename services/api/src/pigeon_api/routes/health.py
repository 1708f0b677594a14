"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pigeon_api.deps import Ctx

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"description": "not ready: NATS or PostgreSQL unreachable (the reason)"}},
)
async def readyz(ctx: Ctx) -> JSONResponse:
    """Ready to serve: NATS and PostgreSQL reachable (503 with the reason otherwise)."""
    readiness = await ctx.check_ready()
    if readiness.ready:
        return JSONResponse({"status": "ready"})
    return JSONResponse({"status": "not ready", "reason": readiness.reason}, status_code=503)

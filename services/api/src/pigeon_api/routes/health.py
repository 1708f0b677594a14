"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from pigeon_api.deps import Ctx
from pigeon_common import metrics

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


@router.get(metrics.METRICS_PATH, include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Every metric of this process in Prometheus' text format (no token: like /healthz,
    for the scraper; it holds counts only, never an address or a campaign)."""
    return Response(
        metrics.exposition(),
        media_type=metrics.CONTENT_TYPE,
        headers={"cache-control": "no-store"},
    )

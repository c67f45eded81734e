"""Probes and health: /healthz, /readyz, /metrics and /check_health."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from vigil.http.listing import item, select
from vigil.http.models import GUARDED, GUARDED_TEXT, HealthReport, Readiness, Status, refusals
from vigil.http.params import MAX_NAME, Labels, Offset, parse_matchers
from vigil.http.parts import Parts
from vigil.outputs.exporter import iter_render

__all__ = ["OPEN", "health_router"]

OPEN = frozenset({"/healthz", "/readyz"})  # probes: never limited, never need the token, any Host


def health_router(parts: Parts) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", summary="The process is alive", responses=refusals(413))
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz", summary="Every source answered its last fetch", response_model=Readiness,
        responses={**refusals(413), 503: {"model": Readiness, "description": "not ready"}},
    )
    def readyz() -> JSONResponse:
        ready, reasons = parts.engine.ready()
        return JSONResponse({"ready": ready, "reasons": reasons}, 200 if ready else 503)

    @router.get(
        "/metrics", summary="Prometheus exposition of every series' results and Vigil's own health",
        responses=GUARDED_TEXT, response_class=PlainTextResponse,
    )
    def metrics() -> StreamingResponse:
        chunks = iter_render(parts.metrics, list(parts.engine.queries.values()))
        return StreamingResponse(chunks, media_type="text/plain; version=0.0.4; charset=utf-8")

    @router.get(
        "/check_health", response_model=HealthReport,
        summary="Per series: ok, anomalous or warming up, with the reason; 503 while any is anomalous",
        responses={
            **GUARDED, **refusals(400), 503: {"model": HealthReport, "description": "at least one series is anomalous"},
        },
    )
    def check_health(
        query: str | None = Query(None, max_length=MAX_NAME, description="only this query's series"),
        label: Labels = (),
        status: Status | None = None,
        limit: int = Query(1000, ge=1, le=10000),
        offset: Offset = 0,
    ) -> JSONResponse:
        everything = select(parts, query, parse_matchers(label), None)
        anomalous = everything.count("anomalous")
        warming = everything.count("warming_up")
        shown = everything.with_status(status)
        _, reasons = parts.engine.ready()
        report = HealthReport(
            status="anomalous" if anomalous else "ok", series=len(everything), anomalous=anomalous,
            warming_up=warming,
            sources={name: reasons.get(name, "ok") for name in parts.engine.queries},
            offset=offset, items=[item(p) for p in shown[offset : offset + limit]],
        )
        return JSONResponse(report.model_dump(), 503 if anomalous else 200)

    return router

"""Probes and health: /healthz, /readyz, /metrics and /check_health."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from vigil.http.listing import item, select
from vigil.http.models import GUARDED, GUARDED_TEXT, HealthReport, Readiness, Status, refusals
from vigil.http.params import MAX_NAME, Labels, Offset, parse_matchers
from vigil.http.parts import Parts
from vigil.outputs.exporter import Exposition, accepts_gzip

__all__ = ["OPEN", "health_router"]

OPEN = frozenset({"/healthz", "/readyz"})  # probes: never limited, never need the token, any Host
EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


def health_router(parts: Parts) -> APIRouter:
    router = APIRouter()
    exposition = Exposition(parts.metrics, lambda: parts.engine.queries.values())

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
        description="The per-series families each query's `export` names, the open events' peaks "
                    "(`vigil_event_*`) and the self-monitoring. Gzipped when the request's Accept-Encoding "
                    "takes gzip; the per-series part is rendered and compressed once per tick, whoever asks.",
        responses=GUARDED_TEXT, response_class=PlainTextResponse,
    )
    def metrics(request: Request) -> Response:
        gzip = accepts_gzip(request.headers.get("accept-encoding", ""))
        headers = {"Vary": "Accept-Encoding"}
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return Response(exposition.body(gzip=gzip), media_type=EXPOSITION, headers=headers)

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

"""The page and its files (``/``, ``/static/...``; no data in them), and the JSON index at /api/v1."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, HTTPException, Response

from vigil import __version__

__all__ = ["page_router"]

_STATIC = {"app.js": "text/javascript", "chart.js": "text/javascript", "mutes.js": "text/javascript",
           "style.css": "text/css"}
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def page_router(mcp: bool = False) -> APIRouter:
    """The page, its files and the index; `mcp`: the index lists /mcp."""
    router = APIRouter()

    @router.get("/api/v1", summary="What this is: the endpoints")
    def index() -> dict[str, Any]:
        return {
            "name": "vigil", "version": __version__,
            "endpoints": ["/", "/check_health", "/api/v1/summary", "/api/v1/anomalies", "/api/v1/anomalies/{id}",
                          "/api/v1/series", "/api/v1/series/{id}", "/api/v1/anomalies/{id}/feedback",
                          "/api/v1/feedback", "/api/v1/notifications", "/api/v1/mutes", "/api/v1/mutes/{id}",
                          "/metrics", "/healthz", "/readyz", "/openapi.json", *(["/mcp"] if mcp else [])],
        }

    web = files("vigil.http") / "web"
    page_html = (web / "index.html").read_bytes()
    assets = {name: (web / name).read_bytes() for name in _STATIC}

    @router.get("/", include_in_schema=False)
    def page() -> Response:
        return Response(page_html, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @router.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"no file {name!r} here")
        return Response(assets[name], media_type=f"{_STATIC[name]}; charset=utf-8", headers=_PAGE_HEADERS)

    return router

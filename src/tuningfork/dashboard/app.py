"""The dashboard's web application (Starlette): a JSON API under ``/api`` and a static page.

Every route is a GET: the dashboard never changes a study. Endpoints:

- ``/api/studies``: every study's summary (trial counts by state, best value, last activity)
- ``/api/studies/{name}``: a study's summary, best trial(s), workers, sampler and scheduler
- ``/api/studies/{name}/trials?since=V``: the trials changed after version ``V`` (all when 0)
- ``/api/studies/{name}/trials/{number}``: one trial, with its reproducibility record
- ``/api/studies/{name}/trials/{number}/logs/{stdout_log|stderr_log}``: a log's last lines
- ``/api/plots``: the plot kinds available; ``/api/studies/{name}/plots/{kind}``: a plotly
  figure as JSON (404 when there is nothing to plot, 501 when plots are not installed;
  ``?trial=N`` for "schedule": the schedule behind trial N's model)
- ``/``: the page; ``/static/...``: its script and style, and ``/static/plotly.min.js``,
  the plotly.js bundled with the installed plotly Python package (no CDN).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tuningfork._export import strict_json
from tuningfork.dashboard.data import DashboardData, DashboardError, plot_kinds
from tuningfork.exceptions import StorageError, StudyNotFound, TrialNotFound, require

STATIC_DIR = Path(__file__).parent / "static"
"""The page's own assets: index.html, app.js, style.css."""

logger = logging.getLogger("tuningfork.dashboard")

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # plotly.js adds <style> elements and inline styles; no script comes from elsewhere
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
}

# a method of _Api: (self, request) -> response
Endpoint = Callable[[Any, Any], Any]


def plotly_js_path() -> Path | None:
    """The plotly.js file bundled with the installed plotly package, or None without it."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.is_file() else None


def create_app(
    storage_url: str,
    *,
    artifact_root: str | Path | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> Any:
    """The dashboard's Starlette application for the storage at ``storage_url``.

    The storage is opened lazily and only read; a missing SQLite or journal file is
    reported by the API (503) and on the page, never created. ``artifact_root`` is where
    the studies keep their artefacts (default: the storage's), from which trial logs may be
    served. ``allowed_hosts`` limits the Host header (against DNS rebinding).
    Raises `MissingExtra` without Starlette (``pip install 'tuningfork[dashboard]'``).
    """
    require("starlette", "dashboard")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    data = DashboardData(storage_url, artifact_root=artifact_root)
    middleware = [Middleware(_SecurityHeaders)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    app = Starlette(routes=_routes(data), middleware=middleware)
    app.state.data = data
    return app


def _routes(data: DashboardData) -> list[Any]:
    from starlette.responses import FileResponse, PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    def index(request: Any) -> Any:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    def plotly_js(request: Any) -> Any:
        path = plotly_js_path()
        if path is None:
            return PlainTextResponse("plotly is not installed: pip install plotly", 404)
        return FileResponse(path, media_type="text/javascript")

    api = _Api(data)
    return [
        Route("/", index),
        Route("/api/plots", api.plots),
        Route("/api/studies", api.studies),
        Route("/api/studies/{name}", api.study),
        Route("/api/studies/{name}/trials", api.trials),
        Route("/api/studies/{name}/trials/{number:int}", api.trial),
        Route("/api/studies/{name}/trials/{number:int}/logs/{key}", api.log),
        Route("/api/studies/{name}/plots/{kind}", api.plot),
        Route("/static/plotly.min.js", plotly_js),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]


def _json_response(doc: Any, status: int = 200) -> Any:
    from starlette.responses import Response

    body = json.dumps(strict_json(doc), separators=(",", ":"))
    return Response(body, status, media_type="application/json")


def _error_status(error: Exception) -> int | None:
    if isinstance(error, DashboardError):
        return error.status
    if isinstance(error, (StudyNotFound, TrialNotFound)):
        return 404
    if isinstance(error, (StorageError, sa.exc.SQLAlchemyError, OSError)):
        return 503
    return None


def _api(endpoint: Endpoint) -> Endpoint:
    """Turn known errors into ``{"error": message}`` with a status, and forbid caching."""

    @functools.wraps(endpoint)
    def wrapper(self: Any, request: Any) -> Any:
        try:
            response = endpoint(self, request)
        except Exception as error:
            status = _error_status(error)
            if status is None:
                raise
            if status >= 500:
                logger.warning("%s: %s", request.url.path, error)
            response = _json_response({"error": str(error), "status": status}, status)
        response.headers["Cache-Control"] = "no-store"
        return response

    return wrapper


class _Api:
    """The JSON endpoints (synchronous: Starlette runs them in its thread pool)."""

    def __init__(self, data: DashboardData) -> None:
        self.data = data

    @_api
    def plots(self, request: Any) -> Any:
        return _json_response(plot_kinds())

    @_api
    def studies(self, request: Any) -> Any:
        return _json_response(self.data.studies())

    @_api
    def study(self, request: Any) -> Any:
        return _json_response(self.data.study_detail(request.path_params["name"]))

    @_api
    def trials(self, request: Any) -> Any:
        since = _int_param(request.query_params.get("since", "0"), "since")
        return _json_response(self.data.trials(request.path_params["name"], since))

    @_api
    def trial(self, request: Any) -> Any:
        params = request.path_params
        return _json_response(self.data.trial_detail(params["name"], params["number"]))

    @_api
    def log(self, request: Any) -> Any:
        params = request.path_params
        tail = self.data.log_tail(params["name"], params["number"], params["key"])
        return _json_response(tail.to_json())

    @_api
    def plot(self, request: Any) -> Any:
        from starlette.responses import Response

        params = request.path_params
        figure = self.data.plot(params["name"], params["kind"], dict(request.query_params))
        return Response(figure, media_type="application/json")


def _int_param(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DashboardError(f"{name} must be an integer, not {value!r}", 400) from None


class _SecurityHeaders:
    """Adds headers that keep the page from being framed, sniffed or fed foreign scripts."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                for key, value in _SECURITY_HEADERS.items():
                    if key.lower().encode() not in present:
                        headers.append((key.lower().encode(), value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

"""A live, read-only web dashboard of the studies in one storage.

``tuningfork dashboard --storage URL`` (or `serve`) starts it on http://127.0.0.1:8080/:
a list of studies; per study its best trial, a sortable and filterable trials table that
updates while workers run, interactive plots (`tuningfork.viz`, drawn with the plotly.js
bundled in the plotly package) and a trial's parameters, values, intermediate reports,
attributes, reproducibility record and logs. It never writes to the storage.

Needs Starlette and uvicorn: ``pip install 'tuningfork[dashboard]'`` (plots also need
``tuningfork[viz]``). The dashboard has no authentication: keep it on 127.0.0.1 and reach
it from elsewhere through an SSH tunnel (``ssh -L 8080:127.0.0.1:8080 host``).
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

from tuningfork.exceptions import require
from tuningfork.storage import redact_url

__all__ = ["create_app", "serve"]

logger = logging.getLogger("tuningfork.dashboard")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(
    storage_url: str,
    *,
    artifact_root: str | Path | None = None,
    allowed_hosts: list[str] | None = None,
) -> Any:
    """The dashboard's Starlette application (see `tuningfork.dashboard.app.create_app`).

    Raises `MissingExtra` naming ``pip install 'tuningfork[dashboard]'`` without Starlette.
    """
    require("starlette", "dashboard")
    from tuningfork.dashboard.app import create_app as _create_app

    return _create_app(storage_url, artifact_root=artifact_root, allowed_hosts=allowed_hosts)


def is_loopback(host: str) -> bool:
    """True when ``host`` is only reachable from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(
    storage_url: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    open_browser: bool = False,
    artifact_root: str | Path | None = None,
) -> None:
    """Serve the dashboard of ``storage_url`` on ``host:port`` until interrupted.

    On a loopback address only Host headers naming this machine are accepted (a guard
    against DNS rebinding); on any other address a warning says that anyone who can reach
    the port can read the studies, since the dashboard has no authentication.
    Raises `MissingExtra` naming ``pip install 'tuningfork[dashboard]'`` without Starlette
    or uvicorn.
    """
    require("starlette", "dashboard")
    uvicorn = require("uvicorn", "dashboard")
    local = is_loopback(host)
    if not local:
        logger.warning(
            "the dashboard is served on %s, reachable from other machines, and has no "
            "authentication: anyone who can reach port %d can read every study in %s. "
            "Prefer --host 127.0.0.1 and an SSH tunnel.",
            host,
            port,
            redact_url(storage_url),
        )
    allowed = [*LOOPBACK_HOSTS, "[::1]"] if local else None
    app = create_app(storage_url, artifact_root=artifact_root, allowed_hosts=allowed)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"
    shown = redact_url(storage_url)
    print(f"tuningfork dashboard of {shown} at {url} (Ctrl-C to stop)", file=sys.stderr)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=host, port=port, log_level="warning")

"""The dashboard page, its assets, the JSON behind every chart, and /metrics, on faust's web server.

Every chart of the page reads one endpoint:
- /api/overview                    volumes (last window, baseline, active alerts), sites, recent alerts
- /api/volumes/{volume}/windows    closed windows: IOPS, MB/s, sizes, overwrite ratio, entropy, hot regions
- /api/volumes/{volume}/points     recovery points, and the suggested clean points of alerts
- /api/volumes/{volume}/heatmap    writes per slice of the address space, per window
- /api/mirrors                     each site's state and RPO lag over time
- /api/alerts                      the recent Alert events, newest first
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import faust

from .engine import Engine
from .metrics import AnalyticsMetrics

ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
OVERVIEW_ALERTS = 50


def asset(name: str) -> str:
    return resources.files("tidemark.analytics").joinpath("assets", name).read_text()


def active_alerts(engine: Engine) -> list[dict[str, Any]]:
    """The episodes whose newest event is RAISED."""
    newest: dict[str, dict[str, Any]] = {}
    for alert in engine.recent:
        newest[alert["alert_id"]] = alert
    return [a for a in newest.values() if a["state"] == "RAISED"]


def overview(engine: Engine) -> dict[str, Any]:
    active = active_alerts(engine)
    volumes = []
    for name, state in sorted(engine.live.items()):
        windows = engine.cached("windows").get(name) or []
        volumes.append({
            "volume": name, "size": state.size, "block_size": state.block_size, "writes": state.writes,
            "baseline": state.detector.baseline, "suspected": state.detector.active,
            "last_window": {k: v for k, v in windows[-1].items() if k not in ("heat", "sizes")} if windows else None,
            "alerts": [a for a in active if a["volume"] == name],
        })  # fmt: skip
    sites = [{k: v for k, v in view.items() if k != "history"} for view in engine.cached("mirrors").values()]
    return {
        "clock_ms": engine.clock_ms, "volumes": volumes, "sites": sorted(sites, key=lambda s: (s["volume"], s["site"])),
        "alerts": list(reversed(engine.recent))[:OVERVIEW_ALERTS], "skipped": engine.skipped,
    }  # fmt: skip


def windows(engine: Engine, volume: str) -> dict[str, Any]:
    return {"volume": volume, "windows": [
        {k: v for k, v in w.items() if k != "heat"} for w in engine.cached("windows").get(volume) or []
    ]}  # fmt: skip


def points(engine: Engine, volume: str) -> dict[str, Any]:
    clean = [
        {"alert_id": a["alert_id"], "rp_id": a["clean_rp_id"], "window_start": a["window_start"],
         "window_end": a["window_end"], "change_seq": a["change_seq"], "state": a["state"]}
        for a in engine.recent
        if a["kind"] == "ENCRYPTION_SUSPECTED" and a["volume"] == volume and a["state"] == "RAISED"
    ]  # fmt: skip
    return {"volume": volume, "points": engine.cached("points").get(volume) or [], "clean_points": clean}


def heatmap(engine: Engine, volume: str) -> dict[str, Any]:
    state = engine.live.get(volume)
    rows = [[w["start_ms"], w["heat"]] for w in engine.cached("windows").get(volume) or []]
    return {"volume": volume, "size": state.size if state else 0, "buckets": engine.s.heatmap_buckets, "rows": rows}


def mirrors(engine: Engine) -> list[dict[str, Any]]:
    return sorted(engine.cached("mirrors").values(), key=lambda view: (view["volume"], view["site"]))


def register_views(app: faust.App, engine: Engine, metrics: AnalyticsMetrics) -> None:
    @app.page("/")
    async def dashboard(self: Any, request: Any) -> Any:
        return self.html(asset("dashboard.html"))

    @app.page("/assets/{name}")
    async def assets(self: Any, request: Any, name: str) -> Any:
        if name not in ASSETS:
            return self.text(f"no asset {name}", status=404)
        return self.text(asset(name), content_type=ASSETS[name])

    @app.page("/api/overview")
    async def overview_view(self: Any, request: Any) -> Any:
        return self.json(overview(engine))

    @app.page("/api/volumes/{volume}/windows")
    async def windows_view(self: Any, request: Any, volume: str) -> Any:
        return self.json(windows(engine, volume))

    @app.page("/api/volumes/{volume}/points")
    async def points_view(self: Any, request: Any, volume: str) -> Any:
        return self.json(points(engine, volume))

    @app.page("/api/volumes/{volume}/heatmap")
    async def heatmap_view(self: Any, request: Any, volume: str) -> Any:
        return self.json(heatmap(engine, volume))

    @app.page("/api/mirrors")
    async def mirrors_view(self: Any, request: Any) -> Any:
        return self.json(mirrors(engine))

    @app.page("/api/alerts")
    async def alerts_view(self: Any, request: Any) -> Any:
        return self.json(list(reversed(engine.recent)))

    @app.page("/metrics")
    async def metrics_view(self: Any, request: Any) -> Any:
        metrics.refresh(engine)
        return self.bytes(metrics.exposition(), content_type="text/plain; version=0.0.4")

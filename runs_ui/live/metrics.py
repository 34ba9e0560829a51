"""Prometheus metrics of the live layer, per process (scrape each daphne process; /metrics, see
runs_ui/views/health.py). Names follow Prometheus conventions: counters end in _total, times in seconds."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

sockets = Gauge("runs_live_sockets", "Open live sockets on this process, by page", ["page"])
watched_runs = Gauge("runs_live_watched_runs", "Runs this process watches, by priority", ["priority"])
polls = Counter("runs_live_polls_total", "Polls of runs and threads by this process's watchers", ["kind"])
upstream_requests = Counter(
    "runs_live_upstream_requests_total",
    "Upstream requests the watchers made, by connection and priority (the budget's use)",
    ["connection", "priority"],
)
budget_wait = Histogram(
    "runs_live_budget_wait_seconds",
    "How long a watcher's request waited for its connection's budget",
    ["connection", "priority"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
pushes = Counter("runs_live_pushes_total", "Pushes published by this process", ["kind"])
push_latency = Histogram(
    "runs_live_push_latency_seconds",
    "From a change being observed (poll answer or stream event) to its push reaching a socket",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
lease_takeovers = Counter(
    "runs_live_lease_takeovers_total", "Leases this process took from a holder that stopped renewing"
)
leases_lost = Counter(
    "runs_live_leases_lost_total", "Publishes refused because this process no longer held the lease"
)
gaps_repaired = Counter(
    "runs_live_version_gaps_repaired_total", "Sockets brought up to date after missing pushes", ["how"]
)
watch_errors = Counter("runs_live_watch_errors_total", "Errors a watch backed off from", ["kind"])

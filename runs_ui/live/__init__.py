"""The live layer: one watcher per run across the cluster, versioned pushes, sockets that never go quiet.

Rooms, top to bottom (imports run one way):
- clock.py      time, injectable (tests of timing logic do not depend on how busy the machine is)
- store.py      the shared store (Redis, or memory for one process): leases with fencing tokens,
                versions, saved states and the pushes since them
- budget.py     the cluster-wide request budget per upstream connection, by priority
- state.py      RunState: what is known of one run; `apply(event)` for streams, `diff(poll)` for polls
- fragments.py  page partials rendered as pushed HTML (the same partials as the pages)
- bus.py        group names, fenced publishing and loading pushes
- watcher.py    the pollers (run and thread watches), one publisher per run
- relay.py      runs started here stream; their events are published through the run's watch
- hub.py        this process's sockets: version probes, bus recovery, session checks
- consumers.py  the WebSocket consumer; routing.py its URLs
- polling.py    the HTTP fallback a page polls while its socket is down
- metrics.py    Prometheus metrics of all of the above
"""

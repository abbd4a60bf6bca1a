"""Watch and control a fleet of IPVTL video transcoder servers.

Blocking and asyncio, over the Rust client (``ipvtl-client``)::

    import ipvtl
    cluster = ipvtl.Cluster.from_file("servers/servers.json", concurrency=64, timeout=5.0)
    snap = cluster.poll()
    for s in snap.servers:
        print(s.id, s.health, s.cpu_avg, [c.state for c in s.channels])
    report = cluster.restart("server-01", 3)          # blocking
    report = await cluster.restart_async("server-01", 3)  # asyncio

Conventions: every model has ``to_dict()``, the project's wire view (the
JSON the dashboard serves), and each property is the dict key of the same
name: durations are integer milliseconds (``*_ms``), points in time are
float seconds since the Unix epoch (``*_at``, like ``time.time()``).
Arguments (settings, timeouts) are float seconds, and a setting left out is
the Rust client's default. Channels are numbered from 1.

Errors derive from :class:`IpvtlError`: :class:`ConfigError`,
:class:`ServerNotFound`, :class:`ChannelNotFound`, :class:`Busy`,
:class:`MaintenanceError`, :class:`ActionFailed` (``.report``) and
:class:`TransportError`; an action whose server could not be reached
raises :class:`ServerUnreachable`, which is both of the last two. ``poll()``
never raises for one server: its ``health`` and ``error`` say what failed.

Offline testing: :mod:`ipvtl.testing` has a simulated fleet.
"""

import atexit as _atexit

from ._ipvtl import (
    ActionFailed,
    AlertWatch,
    ActionReport,
    BatchReport,
    Busy,
    Channel,
    ChannelNotFound,
    Cluster,
    ClusterSnapshot,
    ConfigError,
    Event,
    EventStream,
    IpvtlError,
    MaintenanceError,
    PhaseReport,
    ReloadSummary,
    Server,
    ServerConfig,
    ServerNotFound,
    ServerUnreachable,
    TransportError,
    __version__,
)
from ._ipvtl import _shutdown

# asyncio calls are completed from a background executor thread; stop it
# (dropping whatever is still in flight) before the interpreter tears down.
_atexit.register(_shutdown)

__all__ = [
    "ActionFailed",
    "AlertWatch",
    "ActionReport",
    "BatchReport",
    "Busy",
    "Channel",
    "ChannelNotFound",
    "Cluster",
    "ClusterSnapshot",
    "ConfigError",
    "Event",
    "EventStream",
    "IpvtlError",
    "MaintenanceError",
    "PhaseReport",
    "ReloadSummary",
    "Server",
    "ServerConfig",
    "ServerNotFound",
    "ServerUnreachable",
    "TransportError",
    "__version__",
]

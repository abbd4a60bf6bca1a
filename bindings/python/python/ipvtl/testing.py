"""Test your ipvtl scripts offline, against a simulated fleet.

    from ipvtl.testing import SimFleet
    import ipvtl

    with SimFleet(count=20, channels=4, stopping_time=0.3) as fleet:
        fleet.set_fault(fleet.ids[0], "hang")
        fleet.set_fault(fleet.ids[1], ("slow", 2.0))
        with ipvtl.Cluster(fleet.servers, timeout=1.0) as cluster:
            snap = cluster.poll()

Servers listen on loopback only (127.20.x.y addresses by default, or ports of
127.0.0.1 with ``addressing="ports"``). Faults: ``"down"``, ``"hang"``,
``"http500"``, ``"malformed"``, ``"oversized"``, ``"reset"``,
``"stuck_stopping"``, ``"reject_commands"``, ``"stalled"`` (running channels
go to 0 fps with their uptime frozen until restarted), ``"slow"`` /
``("slow", seconds)``,
``"flapping"`` / ``("flapping", seconds)``, and ``None`` to clear.
"""

from ._ipvtl import SimFleet

__all__ = ["SimFleet"]

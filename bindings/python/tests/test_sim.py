"""ipvtl.testing.SimFleet: the simulator's controls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ipvtl
from ipvtl.testing import SimFleet


def test_sim_fleet_surface(tmp_path: Path) -> None:
    with SimFleet(5, channels=3, cores=2, stopping_time=0.2, start_delay=0.05, initial_running=0.0, seed=3,
                  addressing="ports") as fleet:
        assert fleet.running and len(fleet) == 5 and fleet.channels == 3
        assert fleet.ids == [d["id"] for d in fleet.servers] and fleet.ids[0] == "sim-0001"
        assert all(d["host"] == "127.0.0.1" for d in fleet.servers)
        assert len({d["port"] for d in fleet.servers}) == 5
        host, port = fleet.addr(fleet.ids[0])
        assert (host, port) == (fleet.servers[0]["host"], fleet.servers[0]["port"])
        assert fleet.control_addr.startswith("127.0.0.1:")
        assert fleet.channel_state(fleet.ids[0], 1) == "idle" and fleet.channel_state(fleet.ids[0], 9) is None
        fleet.set_fault(fleet.ids[0], ("slow", 1.5))
        fleet.set_fault(fleet.ids[1], "hang")
        assert fleet.fault(fleet.ids[0]) == "slow=1500" and fleet.fault(fleet.ids[1]) == "hang"
        assert fleet.faults() == {fleet.ids[0]: "slow=1500", fleet.ids[1]: "hang"}
        picked = fleet.set_fault_fraction("http500", 0.4)
        assert len(picked) == 2 and all(fleet.fault(i) == "http500" for i in picked)
        fleet.clear_faults()
        assert fleet.faults() == {} and fleet.fault(fleet.ids[0]) is None
        fleet.set_fault(fleet.ids[2], ("flapping", 0.5))
        fleet.set_fault(fleet.ids[2], None)
        with pytest.raises(ValueError):
            fleet.set_fault_fraction(None, 0.5)
        with pytest.raises(ValueError):
            fleet.set_fault_fraction("hang", 2.0)
        rec = fleet.record(fleet.ids[0])
        assert rec["total_requests"] == 0 and rec["commands"] == [] and "request_times_ms" in rec
        with ipvtl.Cluster(fleet.servers, background=False, timeout=1.0) as c:
            c.start(fleet.ids[0], 2)
        rec = fleet.record(fleet.ids[0])
        assert [(x["channel"], x["action"]) for x in rec["commands"]] == [(2, "start")]
        assert rec["status_requests"] >= 1 and rec["max_concurrent"] >= 1
        assert fleet.max_concurrent_total() >= 1
        fleet.reset_records()
        assert fleet.record(fleet.ids[0])["total_requests"] == 0
        path = tmp_path / "servers.json"
        fleet.write_servers_json(path, form="object")
        assert json.loads(path.read_text())["servers"] == fleet.servers
        assert json.loads(fleet.servers_json())[0] == fleet.servers[0]
        with pytest.raises(ValueError):
            fleet.servers_json("yaml")  # type: ignore[arg-type]
        assert "SimFleet(servers=5" in repr(fleet)
    assert not fleet.running
    fleet.close()  # idempotent


def test_sim_fleet_addressing_by_ip() -> None:
    fleet = SimFleet(3)
    try:
        hosts = [d["host"] for d in fleet.servers]
        assert hosts == ["127.20.0.1", "127.20.0.2", "127.20.0.3"]
        with pytest.raises(ValueError):
            SimFleet(2, addressing="dns")  # type: ignore[arg-type]
    finally:
        fleet.close()

"""Desired state and healing: every method, its errors, and the events as dicts."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import SETTINGS


@pytest.fixture
def idle_fleet() -> Iterator[SimFleet]:
    with SimFleet(3, channels=2, stopping_time=0.2, start_delay=0.1, initial_running=0.0, seed=3) as f:
        yield f


@pytest.fixture
def live(idle_fleet: SimFleet) -> Iterator[ipvtl.Cluster]:
    settings = dict(SETTINGS, background=True, interval=0.2)
    with ipvtl.Cluster(idle_fleet.servers, **settings) as c:
        c.poll()
        yield c


def collect(stream: ipvtl.EventStream, kind: str, count: int = 1, timeout: float = 10.0) -> list[ipvtl.Event]:
    seen: list[ipvtl.Event] = []
    deadline = time.monotonic() + timeout
    while sum(e.kind == kind for e in seen) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {count} {kind} in {[e.kind for e in seen]}")
        e = stream.next(timeout=min(left, 0.2))
        if e is not None:
            seen.append(e)
    return seen


def test_desired_settings_round_trip(cluster: ipvtl.Cluster, fleet: SimFleet) -> None:
    sid = fleet.ids[0]
    assert cluster.desired(sid, 1) == {"desired": "unmanaged", "scope": None}
    cluster.set_desired("running", server=sid)
    cluster.set_desired("idle", server=sid, channel=2)
    cluster.set_desired("idle", tag="eu")
    assert cluster.desired(sid, 1) == {
        "desired": "running",
        "scope": {"scope": "server", "server_id": sid, "channel_id": None, "tag": None},
    }
    assert cluster.desired(sid, 2)["desired"] == "idle"
    settings = cluster.desired_settings()
    assert [(s["scope"], s["desired"]) for s in settings] == [("channel", "idle"), ("server", "running"), ("tag", "idle")]
    assert {s["source"] for s in settings} == {"api"}
    assert json.dumps(settings)
    assert cluster.clear_desired(server=sid, channel=2) == "idle"
    assert cluster.clear_desired(server=sid, channel=2) is None
    assert cluster.clear_desired(tag="eu") == "idle"


def test_bad_desired_input_is_refused_with_the_valid_names(cluster: ipvtl.Cluster, fleet: SimFleet) -> None:
    sid = fleet.ids[0]
    with pytest.raises(ipvtl.ConfigError) as e:
        cluster.set_desired("Running", server=sid)
    assert e.value.kind == "invalid"
    assert all(name in str(e.value) for name in ("running", "idle", "unmanaged"))
    cases: list[dict[str, Any]] = [{}, {"channel": 1}, {"server": sid, "tag": "eu"}, {"server": sid, "channel": 0}]
    for kwargs in cases:
        with pytest.raises(ipvtl.ConfigError):
            cluster.set_desired("running", **kwargs)
    with pytest.raises(ipvtl.ServerNotFound) as nf:
        cluster.set_desired("running", server="nope")
    assert nf.value.server_id == "nope"
    with pytest.raises(ipvtl.ChannelNotFound):
        cluster.desired(sid, 0)
    with pytest.raises(ipvtl.ServerNotFound):
        cluster.clear_degraded("nope", 1)
    assert cluster.desired_settings() == []


def test_healing_policies_and_reconciler_settings(cluster: ipvtl.Cluster, fleet: SimFleet) -> None:
    sid = fleet.ids[1]
    cluster.set_healing(server=sid, grace=1.5, limit=2)
    cluster.set_healing(tag="lab", enabled=False)
    (server, tag) = cluster.healing_settings()
    assert server["scope"] == "server" and server["enabled"] is True
    assert (server["grace_ms"], server["limit"]) == (1500, 2)
    assert server["window_ms"] > 0 and server["backoff_max_ms"] >= server["backoff_ms"]
    assert tag == {
        "scope": "tag",
        "server_id": None,
        "channel_id": None,
        "tag": "lab",
        "enabled": False,
        "grace_ms": None,
        "limit": None,
        "window_ms": None,
        "backoff_ms": None,
        "backoff_max_ms": None,
        "source": "api",
    }
    for bad in [dict(limit=0), dict(window=0.0), dict(backoff=5.0, backoff_max=1.0), dict(grace=-1.0)]:
        with pytest.raises(ipvtl.ConfigError):
            cluster.set_healing(server=sid, **bad)  # type: ignore[arg-type]
    assert cluster.clear_healing(tag="lab") is True
    assert cluster.clear_healing(tag="lab") is False
    r = cluster.reconciler()
    assert set(r) == {
        "max_parallel",
        "storm_percent",
        "storm_min",
        "dry_run",
        "paused",
        "storm",
        "managed",
        "troubled",
        "heals_in_flight",
    }
    assert r["paused"] is False and r["dry_run"] is False
    r = cluster.configure_reconciler(max_parallel=8, storm_percent=30)
    assert (r["max_parallel"], r["storm_percent"]) == (8, 30)
    with pytest.raises(ipvtl.ConfigError):
        cluster.configure_reconciler(max_parallel=0, paused=True)
    assert cluster.reconciler()["paused"] is False, "a refused change changes nothing"
    cluster.set_healing_paused(True)
    cluster.set_dry_run(True)
    r = cluster.reconciler()
    assert r["paused"] and r["dry_run"] and r["max_parallel"] == 8
    cluster.set_healing_paused(False)
    assert cluster.reconciler()["paused"] is False
    assert cluster.drifts() == [] and cluster.planned_heals() == []
    assert cluster.clear_degraded(sid, 1) is False


def test_an_idle_channel_desired_running_is_started_and_the_events_are_dicts(
    live: ipvtl.Cluster, idle_fleet: SimFleet
) -> None:
    sid = idle_fleet.ids[0]
    stream = live.events()
    idle_fleet.reset_records()
    live.set_desired("running", server=sid, channel=1)
    seen = collect(stream, "drift_started")
    drift = live.drifts()
    assert len(drift) == 1 and drift[0]["server_id"] == sid and drift[0]["observed"] == "idle"
    assert live.snapshot().drifts[0]["channel_id"] == 1
    assert live.snapshot().to_dict()["drifts"][0]["desired"] == "running"
    # Drift is only reported until healing is on.
    live.set_healing(server=sid, grace=0.0)
    seen += collect(stream, "drift_ended")
    if not any(e.kind == "heal_finished" for e in seen):
        seen += collect(stream, "heal_finished")
    kinds = [e.kind for e in seen]
    for k in ["drift_started", "heal_started", "action_started", "action_finished", "heal_finished", "drift_ended"]:
        assert k in kinds, kinds
    started = next(e.to_dict() for e in seen if e.kind == "heal_started")
    assert (started["server_id"], started["channel_id"], started["action"]) == (sid, 1, "start")
    assert started["attempt"] == 1 and isinstance(started["action_id"], int) and started["since_at"] > 1.7e9
    finished: dict[str, Any] = next(e.to_dict() for e in seen if e.kind == "heal_finished")
    assert finished["ok"] is True and finished["action_id"] == started["action_id"]
    ended = next(e.to_dict() for e in seen if e.kind == "drift_ended")
    assert isinstance(ended["lasted_ms"], int) and json.dumps(ended)
    assert [(c["channel"], c["action"]) for c in idle_fleet.record(sid)["commands"]] == [(1, "start")]
    assert idle_fleet.channel_state(sid, 1) == "running"
    assert live.drifts() == []


def test_dry_run_plans_and_sends_nothing(live: ipvtl.Cluster, idle_fleet: SimFleet) -> None:
    sid = idle_fleet.ids[2]
    live.set_dry_run(True)
    stream = live.events()
    idle_fleet.reset_records()
    live.set_desired("running", server=sid)
    live.set_healing(server=sid, grace=0.0)
    seen = collect(stream, "heal_planned", count=2)
    planned = live.planned_heals()
    assert sorted(h["channel_id"] for h in planned) == [1, 2]
    assert all(h["action"] == "start" and h["desired"] == "running" for h in planned)
    assert all(e.to_dict()["action"] == "start" for e in seen if e.kind == "heal_planned")
    assert idle_fleet.record(sid)["commands"] == []


def test_a_channel_that_never_starts_is_degraded_and_can_be_cleared(
    live: ipvtl.Cluster, idle_fleet: SimFleet
) -> None:
    sid = idle_fleet.ids[1]
    idle_fleet.set_fault(sid, "reject_commands")
    stream = live.events()
    live.set_desired("running", server=sid, channel=2)
    live.set_healing(server=sid, channel=2, grace=0.0, limit=2, backoff=0.1)
    seen = collect(stream, "heal_degraded")
    degraded = next(e.to_dict() for e in seen if e.kind == "heal_degraded")
    assert (degraded["server_id"], degraded["channel_id"], degraded["attempts"]) == (sid, 2, 2)
    assert degraded["until_at"] > time.time()
    assert sum(e.kind == "heal_started" for e in seen) == 2
    (drift,) = live.drifts()
    assert drift["degraded"] is True and drift["attempts"] == 2
    idle_fleet.set_fault(sid, None)
    assert live.clear_degraded(sid, 2) is True
    collect(stream, "drift_ended")
    assert idle_fleet.channel_state(sid, 2) == "running"

"""to_dict() is the wire view (docs/wire-schema.json), and every property is
the dict key of the same name with the same value."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import running_channel

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "docs" / "wire-schema.json"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    defs: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())["$defs"]
    return defs


def properties(schema: dict[str, Any], view: str) -> set[str]:
    return set(schema[view]["properties"])


def event_properties(schema: dict[str, Any], kind: str) -> set[str]:
    """The keys of an event of `kind`: EventView's own (`message`) and its
    variant's (a oneOf entry whose `kind` is that const)."""
    view = schema["EventView"]
    (variant,) = [v for v in view["oneOf"] if v["properties"]["kind"].get("const") == kind]
    keys = set(variant["properties"])
    if "$ref" in variant:
        keys |= properties(schema, variant["$ref"].rsplit("/", 1)[-1])
    return keys | set(view["properties"])


def assert_properties_are_the_dict(obj: Any) -> None:
    """Each key of `obj.to_dict()` is a property of `obj` with that value
    (`from` is `from_`; a list of models is compared by their dicts)."""
    d = obj.to_dict()
    for key, value in d.items():
        got = getattr(obj, "from_" if key == "from" else key)
        if isinstance(got, list) and got and hasattr(got[0], "to_dict"):
            got = [item.to_dict() for item in got]
        assert got == value, (type(obj).__name__, key, got, value)


def test_server_dict_is_the_server_view(schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    fleet.set_fault(fleet.ids[1], "down")
    snap = cluster.poll()
    for s in snap.servers:
        assert set(s.to_dict()) == properties(schema, "ServerView")
        assert_properties_are_the_dict(s)
        for ch in s.channels:
            assert set(ch.to_dict()) == properties(schema, "ChannelView")
            assert_properties_are_the_dict(ch)
    assert set(snap.server(fleet.ids[0]).config.to_dict()) < properties(schema, "ServerView")
    d = snap.to_dict()
    assert set(d) == properties(schema, "SnapshotView")
    assert set(d["counts"]) == properties(schema, "HealthCounts") and d["counts"] == snap.counts()
    assert d["taken_at"] == snap.taken_at and d["sweep"] == snap.sweep
    assert d["servers"] == [s.to_dict() for s in snap.servers]


def test_action_report_dict_is_the_action_report_view(
    schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    sid = fleet.ids[0]
    r = cluster.restart(sid, running_channel(fleet, sid))
    assert set(r.to_dict()) == properties(schema, "ActionReportView")
    assert_properties_are_the_dict(r)
    for p in r.phases:
        assert set(p.to_dict()) == properties(schema, "PhaseView")
        assert_properties_are_the_dict(p)
    d = r.to_dict()
    assert isinstance(d["duration_ms"], int) and d["action"] == "restart" and d["channel_id"] == r.channel_id


def test_batch_report_dict_is_the_batch_report_view(
    schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    cluster.poll()
    fleet.set_fault(fleet.ids[0], "reject_commands")
    b = cluster.batch("restart", targets=[(fleet.ids[0], 1), (fleet.ids[1], 1)], max_parallel=1,
                      stop_on_failure=True)
    assert set(b.to_dict()) == properties(schema, "BatchReportView")
    assert_properties_are_the_dict(b)
    assert b.stopped_early == "first_failure" and b.stopped_reason and fleet.ids[0] in b.stopped_reason
    skipped = b.reports[1]
    assert skipped.error_kind == "skipped" and skipped.action_id is None and skipped.to_dict()["action_id"] is None


def test_channel_stalled_event_dict_is_its_event_view(
    schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    sid = fleet.ids[0]
    cluster.poll()
    with cluster.events() as events:
        fleet.set_fault(sid, "stalled")
        cluster.poll()
        seen = []
        while (ev := events.try_next()) is not None:
            seen.append(ev)
    stalled = [e for e in seen if e.kind == "channel_stalled"]
    assert stalled
    for ev in stalled:
        assert set(ev.to_dict()) == event_properties(schema, "channel_stalled")
        assert_properties_are_the_dict(ev)
        assert (ev.server_id, ev.reason) == (sid, "zero_fps")
        assert ev.channel_id is not None
        channel = cluster.server(sid).channel(ev.channel_id)
        assert channel is not None and channel.stall == "zero_fps"
    sweep = [e for e in seen if e.kind == "sweep_finished"][0]
    assert set(sweep.to_dict()) == event_properties(schema, "sweep_finished")
    assert_properties_are_the_dict(sweep)


def test_every_event_dict_matches_its_variant(schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    with cluster.events() as events:
        cluster.poll()
        cluster.batch("restart", targets=[(fleet.ids[2], 1)])
        fleet.set_fault(fleet.ids[3], "down")
        cluster.refresh(fleet.ids[3])
        seen = []
        while (ev := events.next(timeout=0.5)) is not None:
            seen.append(ev)
    kinds = {e.kind for e in seen}
    assert kinds >= {"sweep_finished", "action_started", "action_finished", "batch_progress", "batch_finished",
                     "channel_state_changed", "refreshed", "health_changed"}, kinds
    for ev in seen:
        assert set(ev.to_dict()) == event_properties(schema, ev.kind), ev.kind
        for key, value in ev.to_dict().items():
            if hasattr(type(ev), "from_" if key == "from" else key):
                assert getattr(ev, "from_" if key == "from" else key) == value, (ev.kind, key)
        if ev.kind in ("action_finished", "batch_finished"):
            assert ev.report is not None
            assert {k: v for k, v in ev.to_dict().items() if k not in ("kind", "message")} == ev.report.to_dict()


def test_actions_in_flight_are_action_progress_views(
    schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster
) -> None:
    sid = fleet.ids[4]
    cluster.poll()
    fleet.set_fault(sid, "stuck_stopping")
    ch = running_channel(fleet, sid)
    with cluster.events() as events:
        t = threading.Thread(target=lambda: _restart_quietly(cluster, sid, ch))
        t.start()
        while (ev := events.next(timeout=5.0)) is not None and ev.kind != "action_started":
            pass
        actions = cluster.actions()
        fleet.set_fault(sid, None)
        t.join()
    assert len(actions) == 1 and set(actions[0]) == properties(schema, "ActionProgressView")
    assert (actions[0]["server_id"], actions[0]["channel_id"], actions[0]["action"]) == (sid, ch, "restart")


def _restart_quietly(cluster: ipvtl.Cluster, sid: str, ch: int) -> None:
    try:
        cluster.restart(sid, ch)
    except ipvtl.ActionFailed:
        pass


def test_reload_dict_is_the_reload_view(schema: dict[str, Any], fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    summary = cluster.reload(fleet.servers[:2])
    assert set(summary.to_dict()) == properties(schema, "ReloadView")
    assert_properties_are_the_dict(summary)

"""Every exception, raised for its real cause against the simulator."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import SETTINGS, running_channel, wait_until


def test_the_tree_is_rooted_at_ipvtl_error() -> None:
    for exc in (
        ipvtl.ConfigError,
        ipvtl.ServerNotFound,
        ipvtl.ChannelNotFound,
        ipvtl.Busy,
        ipvtl.MaintenanceError,
        ipvtl.ActionFailed,
        ipvtl.TransportError,
    ):
        assert issubclass(exc, ipvtl.IpvtlError)
    assert issubclass(ipvtl.IpvtlError, Exception)
    assert ipvtl.ServerUnreachable.__mro__[1:3] == (ipvtl.ActionFailed, ipvtl.TransportError)


def test_config_error_for_bad_lists_files_and_settings(fleet: SimFleet, tmp_path: Path) -> None:
    with pytest.raises(ipvtl.ConfigError, match="duplicate") as e:
        ipvtl.Cluster([{"id": "a", "host": "127.0.0.1"}, {"id": "a", "host": "127.0.0.2"}])
    assert e.value.kind == "config"
    with pytest.raises(ipvtl.ConfigError, match="host"):
        ipvtl.Cluster([{"id": "a", "host": ""}])
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "a", "host": "127.0.0.1"},')
    with pytest.raises(ipvtl.ConfigError, match="bad.json"):
        ipvtl.Cluster.from_file(bad)
    with pytest.raises(ipvtl.ConfigError) as e:
        ipvtl.Cluster.from_file(tmp_path / "missing.json")
    assert e.value.kind == "io"
    with pytest.raises(ipvtl.ConfigError, match="concurrency"):
        ipvtl.Cluster(fleet.servers, concurrency=0)
    with pytest.raises(ipvtl.ConfigError, match="timeout"):
        ipvtl.Cluster(fleet.servers, timeout=-1.0)
    with ipvtl.Cluster(fleet.servers, **SETTINGS) as c:
        with pytest.raises(ipvtl.ConfigError):
            c.reload([{"id": "x", "host": "127.0.0.1", "port": 0}])
        assert c.ids == fleet.ids, "a bad reload changes nothing"
        with pytest.raises(ipvtl.ConfigError, match="max_parallel"):
            c.batch("restart", max_parallel=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(states=["runing"]), 'unknown channel state "runing"; valid states: idle, running, stopping'),
        (dict(failure_threshold=0), "failure_threshold must be at least 1"),
        (dict(max_parallel=65), r"max_parallel must be within 1\.\.=64 \(got 65\)"),
        (dict(max_parallel=0), r"max_parallel must be within 1\.\.=64 \(got 0\)"),
        (dict(channels=[0]), "channel numbers start at 1"),
        (dict(targets=[]), "at least one channel"),
        (dict(targets=[("a", 1)], servers=["a"]), "exactly one"),
    ],
)
def test_bad_batch_arguments_raise_config_error_and_run_nothing(
    fleet: SimFleet, cluster: ipvtl.Cluster, kwargs: dict[str, Any], message: str
) -> None:
    # Validated once, by the core's BatchInput: plan and batch say the same.
    cluster.poll()
    fleet.reset_records()
    with pytest.raises(ipvtl.ConfigError, match=message) as e:
        cluster.batch("restart", **kwargs)
    assert e.value.kind == "batch"
    with pytest.raises(ipvtl.ConfigError, match=message):
        cluster.plan("restart", **kwargs)
    assert all(fleet.record(sid)["commands"] == [] for sid in fleet.ids)


def test_an_unknown_batch_action_is_a_config_error(cluster: ipvtl.Cluster) -> None:
    with pytest.raises(ipvtl.ConfigError, match="reboot"):
        cluster.batch("reboot")  # type: ignore[arg-type]


def test_server_not_found(cluster: ipvtl.Cluster) -> None:
    for call in (
        lambda: cluster.restart("nope", 1),
        lambda: cluster.start("nope", 1),
        lambda: cluster.stop("nope", 1),
        lambda: cluster.refresh("nope"),
        lambda: cluster.server("nope"),
        lambda: cluster.set_maintenance("nope", True),
        lambda: cluster.snapshot().server("nope"),
    ):
        with pytest.raises(ipvtl.ServerNotFound) as e:
            call()
        assert e.value.server_id == "nope"
        assert e.value.kind == "server_not_found"


def test_channel_not_found_sends_nothing(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[0]
    cluster.poll()
    fleet.reset_records()
    with pytest.raises(ipvtl.ChannelNotFound) as e:
        cluster.restart(sid, 0)
    assert e.value.channel_id == 0 and e.value.count is None
    with pytest.raises(ipvtl.ChannelNotFound) as e:
        cluster.restart(sid, 5)
    assert (e.value.server_id, e.value.channel_id, e.value.count) == (sid, 5, 4)
    assert fleet.record(sid)["total_requests"] == 0


def test_busy_while_an_action_holds_the_channel(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[1]
    cluster.poll()
    ch = running_channel(fleet, sid)
    fleet.reset_records()
    result: list[ipvtl.ActionReport] = []
    t = threading.Thread(target=lambda: result.append(cluster.restart(sid, ch)))
    t.start()
    wait_until(lambda: any(a["channel_id"] == ch for a in cluster.actions()))
    with pytest.raises(ipvtl.Busy) as e:
        cluster.restart(sid, ch)
    assert (e.value.server_id, e.value.channel_id) == (sid, ch)
    t.join()
    assert result and result[0].ok
    actions = [c["action"] for c in fleet.record(sid)["commands"]]
    assert actions == ["stop", "start"], "the server saw one restart"


def test_maintenance_refuses_actions(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[0]
    cluster.poll()
    cluster.set_maintenance(sid, True)
    with pytest.raises(ipvtl.MaintenanceError) as e:
        cluster.restart(sid, 1)
    assert e.value.server_id == sid


def test_action_failed_carries_the_report(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    sid = fleet.ids[2]
    cluster.poll()
    ch = running_channel(fleet, sid)
    fleet.set_fault(sid, "reject_commands")
    fleet.reset_records()
    with pytest.raises(ipvtl.ActionFailed) as e:
        cluster.restart(sid, ch)
    report = e.value.report
    assert isinstance(report, ipvtl.ActionReport)
    assert not report.ok and report.error_kind == "stop_failed" and report.server_id == sid
    assert report.cause_kind == "http" and report.to_dict()["cause_kind"] == "http"
    assert not isinstance(e.value, ipvtl.TransportError), "the server answered: not a transport failure"
    assert report.channel_id == ch and report.action == "restart" and report.error
    assert [c["action"] for c in fleet.record(sid)["commands"]] == ["stop"], "no start after a failed stop"


def test_action_failed_on_a_channel_stuck_stopping(fleet: SimFleet) -> None:
    with ipvtl.Cluster(fleet.servers, **{**SETTINGS, "stop_timeout": 0.6}) as c:
        sid = fleet.ids[3]
        c.poll()
        ch = running_channel(fleet, sid)
        fleet.set_fault(sid, "stuck_stopping")
        with pytest.raises(ipvtl.ActionFailed) as e:
            c.restart(sid, ch)
        report = e.value.report
        assert report.error_kind == "stop_timeout" and report.final_state == "stopping"


@pytest.mark.parametrize(
    "fault, kind, unreachable",
    [("down", "connect", True), ("hang", "timeout", True), ("reset", "io", True), ("http500", "http", False),
     ("malformed", "malformed", False), ("oversized", "too_large", False)],
)
def test_transport_error_on_refresh(
    fleet: SimFleet, cluster: ipvtl.Cluster, fault: str, kind: str, unreachable: bool
) -> None:
    sid = fleet.ids[4]
    fleet.set_fault(sid, fault)
    with pytest.raises(ipvtl.TransportError) as e:
        cluster.refresh(sid, raise_on_error=True)
    assert e.value.kind == kind and e.value.server_id == sid
    assert e.value.unreachable is unreachable
    # Without raise_on_error the same failure is in the result.
    s = cluster.refresh(sid)
    assert s.error_kind == kind and s.health in ("offline", "error")


def test_poll_never_raises_for_one_server(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    fleet.set_fault(fleet.ids[0], "down")
    fleet.set_fault(fleet.ids[1], "malformed")
    snap = cluster.poll()
    assert snap.server(fleet.ids[0]).health == "offline"
    assert snap.server(fleet.ids[1]).health == "error"
    assert snap.counts()["online"] == len(fleet) - 2


def test_sim_argument_errors(fleet: SimFleet) -> None:
    with pytest.raises(ipvtl.ServerNotFound):
        fleet.set_fault("nope", "hang")
    with pytest.raises(ValueError):
        fleet.set_fault(fleet.ids[0], "explode")
    with pytest.raises(ValueError):
        SimFleet(0)


def test_an_action_on_an_unreachable_server_is_both_action_failed_and_transport_error(fleet: SimFleet) -> None:
    with ipvtl.Cluster(fleet.servers, **SETTINGS) as c:
        known, never_polled = fleet.ids[4], fleet.ids[5]
        c.refresh(known)
        ch = running_channel(fleet, known)
        fleet.set_fault(known, "down")
        fleet.set_fault(never_polled, "down")
        # The stop cannot connect: nothing was stopped, nothing started.
        with pytest.raises(ipvtl.ServerUnreachable) as e:
            c.restart(known, ch)
        assert isinstance(e.value, ipvtl.ActionFailed) and isinstance(e.value, ipvtl.TransportError)
        assert (e.value.kind, e.value.server_id, e.value.unreachable) == ("connect", known, True)
        assert e.value.report.error_kind == "stop_failed" and e.value.report.cause_kind == "connect"
        assert "channel not started" in str(e.value)
        # The channel count is unknown, so the probe is what fails; either
        # except clause catches it.
        try:
            c.start(never_polled, 1)
        except ipvtl.TransportError as t:
            assert t.kind == "connect" and t.server_id == never_polled
            assert isinstance(t, ipvtl.ActionFailed) and t.report.error_kind == "probe_failed"
        else:
            raise AssertionError("start on a down server raised nothing")
        # A stop may reach the dying server on a kept-alive connection, but
        # nothing was carried out and no start was ever sent.
        assert fleet.channel_state(known, ch) == "running"
        assert [x["action"] for x in fleet.record(known)["commands"]] in ([], ["stop"])
        assert fleet.record(never_polled)["commands"] == []

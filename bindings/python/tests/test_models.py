"""Cluster construction, polling and every model's properties and to_dict()."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import SETTINGS


def test_server_config_defaults_and_validation() -> None:
    cfg = ipvtl.ServerConfig("edge-1", "10.0.0.5")
    assert (cfg.id, cfg.name, cfg.host, cfg.port, cfg.description, cfg.tags) == (
        "edge-1",
        "edge-1",
        "10.0.0.5",
        9527,
        "",
        [],
    )
    cfg = ipvtl.ServerConfig("e2", "h", port=1234, name="Edge", description="d", tags=["a", "b"])
    assert cfg.to_dict() == {
        "id": "e2",
        "name": "Edge",
        "host": "h",
        "port": 1234,
        "description": "d",
        "tags": ["a", "b"],
    }
    assert "e2" in repr(cfg)
    with pytest.raises(ipvtl.ConfigError):
        ipvtl.ServerConfig("x", "http://h/")
    with pytest.raises(ipvtl.ConfigError):
        ipvtl.ServerConfig("x", "h", port=0)


def test_cluster_from_dicts_and_server_configs(fleet: SimFleet) -> None:
    configs = [ipvtl.ServerConfig(d["id"], d["host"], port=d["port"]) for d in fleet.servers]
    with ipvtl.Cluster(configs, **SETTINGS) as c:
        assert c.ids == fleet.ids
        assert len(c) == len(fleet)
        assert c.poll().counts()["online"] == len(fleet)


@pytest.mark.parametrize("form", ["array", "object"])
def test_cluster_from_file_both_forms(fleet: SimFleet, tmp_path: Path, form: str) -> None:
    path = tmp_path / "servers.json"
    fleet.write_servers_json(path, form=form)  # type: ignore[arg-type]
    assert json.loads(fleet.servers_json(form)) == json.loads(path.read_text())  # type: ignore[arg-type]
    with ipvtl.Cluster.from_file(str(path), concurrency=8, timeout=1.0, background=False) as c:
        assert c.ids == fleet.ids
        assert c.settings["concurrency"] == 8
        assert c.settings["timeout"] == 1.0
        assert c.settings["background"] is False


def test_settings_keywords_reach_the_client(cluster: ipvtl.Cluster) -> None:
    s = cluster.settings
    assert s["timeout"] == 1.0 and s["offline_after"] == 1 and s["watch_interval"] == 0.05
    assert s["stop_timeout"] == 5.0 and s["start_timeout"] == 5.0
    assert set(s) >= {"interval", "concurrency", "priority_concurrency", "backoff_max", "body_limit", "event_buffer"}


KEYWORDS = ("interval", "timeout", "concurrency", "priority_concurrency", "backoff_max", "offline_after",
            "stop_timeout", "start_timeout", "watch_interval", "body_limit", "background", "event_buffer")


def test_settings_left_out_or_none_take_the_client_defaults(fleet: SimFleet, tmp_path: Path) -> None:
    # The module restates no default: every keyword defaults to None, and
    # None is the Rust client's own default.
    with ipvtl.Cluster(fleet.servers) as left_out, ipvtl.Cluster(fleet.servers, **dict.fromkeys(KEYWORDS)) as nones:
        defaults = left_out.settings
        assert nones.settings == defaults and set(defaults) == set(KEYWORDS)
    path = tmp_path / "servers.json"
    fleet.write_servers_json(path)
    with ipvtl.Cluster.from_file(path, timeout=None, concurrency=7) as c:
        assert c.settings == {**defaults, "concurrency": 7}


def test_poll_snapshot_server_and_channels(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    before = cluster.snapshot()
    assert all(s.health == "unknown" for s in before.servers)
    t0 = time.time()
    snap = cluster.poll()
    assert isinstance(snap, ipvtl.ClusterSnapshot)
    assert len(snap) == len(fleet) and snap.sweep >= 1
    assert t0 - 1 <= snap.taken_at <= time.time() + 1
    assert [s.id for s in snap] == fleet.ids
    s = snap.server(fleet.ids[0])
    assert isinstance(s, ipvtl.Server)
    assert s.health == "online" and not s.stale and s.error is None and s.error_kind is None
    assert s.host == fleet.addr(s.id)[0] and s.port == fleet.addr(s.id)[1]
    assert s.name and isinstance(s.description, str) and isinstance(s.tags, list)
    assert s.config.id == s.id and s.config.port == s.port
    assert len(s.cpu) == 8 and s.cpu_avg == pytest.approx(sum(s.cpu) / 8, rel=1e-3)
    assert s.status_age_ms is not None and 0 <= s.status_age_ms < 5000
    assert s.last_poll_at is not None and abs(s.last_poll_at - time.time()) < 5
    assert s.last_ok_at == s.last_poll_at
    assert s.latency_ms is not None and s.latency_ms >= 0
    assert s.consecutive_failures == 0 and s.maintenance is False
    assert len(s.channels) == 4
    ch = s.channels[0]
    assert isinstance(ch, ipvtl.Channel)
    assert ch.id == 1 and ch.state == fleet.channel_state(s.id, 1) == "running"
    assert ch.uptime_s is not None and ch.fps is not None and ch.kbps is not None and ch.stall is None
    assert f"{ch.fps:g}fps" in ch.status
    assert s.channel(1) is not None and s.channel(1).id == 1  # type: ignore[union-attr]
    assert s.channel(0) is None and s.channel(99) is None
    one = cluster.server(fleet.ids[1])
    assert one.id == fleet.ids[1] and one.health == "online"
    for obj in (snap, s, ch, one):
        json.dumps(obj.to_dict())
        assert repr(obj)
    d = snap.to_dict()
    assert d["counts"]["online"] == len(fleet) and len(d["servers"]) == len(fleet)
    assert d["servers"][0]["channels"][0] == ch.to_dict()
    assert set(s.to_dict()) >= {"id", "health", "cpu", "cpu_avg", "channels", "stale", "status_age_ms", "error",
                                "last_poll_at"}
    assert set(ch.to_dict()) == {"id", "state", "status", "uptime_s", "fps", "kbps", "stall"}


def test_failed_poll_keeps_last_good_status_as_stale(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    cluster.poll()
    sid = fleet.ids[2]
    fleet.set_fault(sid, "http500")
    s = cluster.refresh(sid)
    assert s.health == "error" and s.stale and s.error_kind == "http" and "500" in (s.error or "")
    assert len(s.channels) == 4, "last good status kept"
    fleet.set_fault(sid, "down")
    snap = cluster.poll()
    assert snap.server(sid).health == "offline" and snap.server(sid).error_kind == "connect"
    assert snap.counts() == {"online": len(fleet) - 1, "offline": 1, "error": 0, "unknown": 0}


def test_reload_from_list_and_from_file(fleet: SimFleet, tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    fleet.write_servers_json(path)
    with ipvtl.Cluster.from_file(path, **SETTINGS) as c:
        c.poll()
        path.write_text(json.dumps(fleet.servers[:3]))
        summary = c.reload()
        assert isinstance(summary, ipvtl.ReloadSummary)
        assert summary.removed == fleet.ids[3:] and summary.added == [] and summary.kept == 3
        assert summary.changed == []
        assert c.ids == fleet.ids[:3]
        assert c.server(fleet.ids[0]).health == "online", "kept servers keep their state"
        json.dumps(summary.to_dict())
        assert repr(summary)
        summary = c.reload(fleet.servers)
        assert summary.added == fleet.ids[3:]
    with ipvtl.Cluster(fleet.servers, **SETTINGS) as c:
        with pytest.raises(ValueError):
            c.reload()  # not made from a file


def test_background_maintenance_actions_and_close(fleet: SimFleet) -> None:
    c = ipvtl.Cluster(fleet.servers, **{**SETTINGS, "interval": 0.2})
    c.set_background(True)
    deadline = time.time() + 5
    while c.snapshot().sweep < 2 and time.time() < deadline:
        time.sleep(0.05)
    assert c.snapshot().sweep >= 2, "background sweeps ran"
    c.set_background(False)
    c.set_maintenance(fleet.ids[0], True)
    assert c.server(fleet.ids[0]).maintenance
    c.set_maintenance(fleet.ids[0], False)
    assert c.actions() == []
    assert not c.closed and "Cluster(servers=6)" == repr(c)
    c.close()
    assert c.closed and repr(c) == "Cluster(closed)"
    c.close()  # idempotent
    with pytest.raises(ipvtl.IpvtlError):
        c.poll()

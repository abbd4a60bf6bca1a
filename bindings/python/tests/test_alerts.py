"""Alerts over a cluster: the rules (TOML or dict), notifications blocking
and with asyncio, silences, and the watch's end."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Iterator

import pytest

import ipvtl
from ipvtl.testing import SimFleet

from conftest import wait_until

# server_down after 0.4 s; cpu_high off (the simulated servers run hot).
RULES = """
[rules.server_down]
for = "400ms"

[rules.cpu_high]
enabled = false
"""
RULES_DICT: dict[str, Any] = {"rules": {"server_down": {"for": 0.4}, "cpu_high": {"enabled": False}}}
WAIT = 10.0


@pytest.fixture
def watch(cluster: ipvtl.Cluster) -> Iterator[ipvtl.AlertWatch]:
    cluster.poll()
    with cluster.watch_alerts(RULES) as w:
        yield w


def down(fleet: SimFleet, cluster: ipvtl.Cluster, sid: str) -> float:
    """Takes `sid` down and sweeps; returns the time just before."""
    fleet.set_fault(sid, "down")
    t = time.time()
    cluster.poll()
    return t


def test_a_server_down_fires_after_its_for_and_resolves(
    fleet: SimFleet, cluster: ipvtl.Cluster, watch: ipvtl.AlertWatch
) -> None:
    sid = fleet.ids[0]
    assert watch.alerts() == [] and watch.try_next() is None
    t0 = down(fleet, cluster, sid)
    wait_until(lambda: [a["state"] for a in watch.alerts()] == ["pending"])
    assert watch.try_next() is None, "nothing fires before its `for`"
    firing = watch.next(timeout=WAIT)
    assert firing is not None
    assert firing["kind"] == "firing" and firing["ends_at"] is None
    assert firing["labels"]["alertname"] == "IpvtlServerDown" and firing["labels"]["server"] == sid
    assert firing["starts_at"] >= t0 + 0.4 - 0.002, (firing["starts_at"], t0)
    assert firing["id"] == f"{firing['fingerprint']}-firing-{round(firing['starts_at'] * 1000)}"
    assert json.dumps(firing)
    (alert,) = watch.alerts()
    assert alert["state"] == "firing" and alert["rule"] == "server_down" and alert["fired_at"] == firing["starts_at"]

    fleet.set_fault(sid, None)
    cluster.poll()
    resolved = next(watch)
    assert resolved["kind"] == "resolved" and resolved["fingerprint"] == firing["fingerprint"]
    assert resolved["ends_at"] >= resolved["starts_at"] == firing["starts_at"]
    assert watch.alerts() == []
    (ended,) = watch.history()
    assert ended["fingerprint"] == firing["fingerprint"] and not ended["silenced"]
    assert watch.next(timeout=0.05) is None


def test_rules_as_a_dict_and_refused_rules(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    with cluster.watch_alerts(RULES_DICT) as w:
        down(fleet, cluster, fleet.ids[1])
        n = w.next(timeout=WAIT)
        assert n is not None and n["labels"]["server"] == fleet.ids[1]
    with pytest.raises(ipvtl.ConfigError) as e:
        cluster.watch_alerts("\n[rules.cpu_high]\npercent = 150\n")
    assert e.value.kind == "invalid" and "line 2" in str(e.value) and "percent" in str(e.value)
    with pytest.raises(ipvtl.ConfigError, match="nope"):
        cluster.watch_alerts({"rules": {"nope": {}}})
    with pytest.raises(ipvtl.ConfigError, match="not a duration"):
        cluster.watch_alerts({"rules": {"drift": {"for": "soon"}}})
    with pytest.raises(TypeError):
        cluster.watch_alerts(42)  # type: ignore[arg-type]
    with cluster.watch_alerts() as defaults:
        # The default rules: the server still down is pending for 60 s.
        assert defaults.silences() == []
        pending = [a for a in defaults.alerts() if a["alertname"] == "IpvtlServerDown"]
        assert [(a["labels"]["server"], a["state"]) for a in pending] == [(fleet.ids[1], "pending")]


def test_a_silence_holds_the_alert_until_it_is_expired(
    fleet: SimFleet, cluster: ipvtl.Cluster, watch: ipvtl.AlertWatch
) -> None:
    sid = fleet.ids[2]
    bad: list[dict[str, Any]] = [
        dict(matchers=["server=~x"], duration=60),
        dict(matchers=["server!=x"], duration=60),
        dict(matchers=[], duration=60),
        dict(matchers=["server=x"]),
        dict(matchers=["server=x"], duration=-1),
        dict(matchers=["server=x"], duration=60, ends_at=time.time() + 60),
        dict(matchers=["server=x"], ends_at=time.time() - 1),
    ]
    for kwargs in bad:
        with pytest.raises(ipvtl.ConfigError) as e:
            watch.silence(**kwargs)
        assert e.value.kind == "invalid", kwargs
    sid_silence = watch.silence([f"server={sid}"], duration=60, comment="maintenance window")
    (s,) = watch.silences()
    assert s["id"] == sid_silence and s["origin"] == "api" and s["comment"] == "maintenance window"
    assert s["matchers"] == [f'server="{sid}"'] and s["ends_at"] > time.time() + 50

    down(fleet, cluster, sid)
    wait_until(lambda: [a["state"] for a in watch.alerts()] == ["silenced"], timeout=WAIT)
    (alert,) = watch.alerts()
    assert alert["silenced_by"] == "silence" and alert["silence_id"] == sid_silence
    assert watch.try_next() is None, "a silenced alert is not notified"

    assert watch.expire_silence(sid_silence) is True
    assert watch.expire_silence(sid_silence) is False
    assert watch.silences() == []
    firing = watch.next(timeout=WAIT)
    assert firing is not None and firing["kind"] == "firing" and firing["labels"]["server"] == sid


def test_the_rules_silences_come_from_the_file(fleet: SimFleet, cluster: ipvtl.Cluster) -> None:
    cluster.poll()
    text = RULES + f'\n[[silences]]\nmatchers = ["server={fleet.ids[0]}"]\ncomment = "lab"\n'
    with cluster.watch_alerts(text) as w:
        (s,) = w.silences()
        assert s["origin"] == "file" and s["ends_at"] is None and s["comment"] == "lab"
        down(fleet, cluster, fleet.ids[0])
        down(fleet, cluster, fleet.ids[1])
        n = w.next(timeout=WAIT)
        assert n is not None and n["labels"]["server"] == fleet.ids[1]
        wait_until(lambda: sorted(a["state"] for a in w.alerts()) == ["firing", "silenced"], timeout=WAIT)


def test_asyncio_next_and_async_for(fleet: SimFleet, cluster: ipvtl.Cluster, watch: ipvtl.AlertWatch) -> None:
    sid = fleet.ids[3]

    async def main() -> list[dict[str, Any]]:
        await cluster.poll_async()
        fleet.set_fault(sid, "down")
        await cluster.poll_async()
        firing = await asyncio.wait_for(watch.next_async(), WAIT)
        assert firing is not None and firing["kind"] == "firing"
        fleet.set_fault(sid, None)
        await cluster.poll_async()
        seen = [firing]
        async for n in watch:
            seen.append(n)
            break
        return seen

    firing, resolved = asyncio.run(main())
    assert firing["labels"]["server"] == sid
    assert resolved["kind"] == "resolved" and resolved["fingerprint"] == firing["fingerprint"]


def test_a_cancelled_await_leaves_the_watch_usable(
    fleet: SimFleet, cluster: ipvtl.Cluster, watch: ipvtl.AlertWatch
) -> None:
    async def main() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(watch.next_async(), 0.1)
        down(fleet, cluster, fleet.ids[4])
        n = await asyncio.wait_for(watch.next_async(), WAIT)
        assert n is not None and n["labels"]["server"] == fleet.ids[4]

    asyncio.run(main())


def test_close_ends_readers_and_the_watch(cluster: ipvtl.Cluster) -> None:
    w = cluster.watch_alerts(RULES)
    assert w.active

    async def waiting() -> list[dict[str, Any]]:
        got = []
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, w.close)
        async for n in w:
            got.append(n)
        return got

    assert asyncio.run(asyncio.wait_for(waiting(), WAIT)) == []
    assert not w.active
    w.close()
    with pytest.raises(ipvtl.IpvtlError) as e:
        w.alerts()
    assert e.value.kind == "closed"


def test_the_watch_ends_with_its_cluster(fleet: SimFleet) -> None:
    from conftest import SETTINGS

    c = ipvtl.Cluster(fleet.servers, **SETTINGS)
    w = c.watch_alerts(RULES)
    assert w.active
    c.close()
    wait_until(lambda: not w.active, timeout=WAIT)
    assert w.next(timeout=WAIT) is None
    assert list(w) == []

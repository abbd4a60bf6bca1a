"""Interpreter exit with asyncio work in flight never crashes (a few runs here;
scripts/test.d/20-python.sh runs 100)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("exit_check.py")


@pytest.mark.parametrize("mode", ["keep-loop", "close-loop"])
def test_exit_with_work_in_flight(mode: str) -> None:
    for _ in range(3):
        done = subprocess.run([sys.executable, str(SCRIPT), mode], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_async_after_shutdown_is_refused() -> None:
    code = (
        "import asyncio, ipvtl\n"
        "from ipvtl import _ipvtl\n"
        "from ipvtl.testing import SimFleet\n"
        "f = SimFleet(1)\n"
        "c = ipvtl.Cluster(f.servers, background=False)\n"
        "_ipvtl._shutdown()\n"
        "async def main():\n"
        "    try:\n"
        "        c.poll_async()\n"
        "    except RuntimeError as e:\n"
        "        print('refused', e)\n"
        "asyncio.run(main())\n"
        "print(c.poll().counts()['online'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [done.stdout.splitlines()[0], "1"]
    assert done.stdout.startswith("refused")

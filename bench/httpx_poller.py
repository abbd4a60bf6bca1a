"""Baseline for the benchmark: a plain asyncio + httpx poller written the way
the original FastAPI tool polls (one AsyncClient, a semaphore for the
concurrency cap, gather over every server, GET /status, json()).

usage: httpx_poller.py SERVERS.json SWEEPS CONCURRENCY [POOL]
POOL (default CONCURRENCY) is the client's connection pool: connections
open and kept alive at most.
Prints one JSON line like sweep_bench.
"""
import asyncio
import json
import resource
import sys
import time

import httpx


async def poll_one(client, sem, server):
    async with sem:
        try:
            r = await client.get(f"http://{server['host']}:{server.get('port', 9527)}/status")
            r.raise_for_status()
            return r.json()
        except Exception:
            return None


async def sweep(client, sem, servers):
    return await asyncio.gather(*(poll_one(client, sem, s) for s in servers))


async def main():
    path, sweeps, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open(path) as f:
        servers = json.load(f)
    if isinstance(servers, dict):
        servers = servers["servers"]
    pool = int(sys.argv[4]) if len(sys.argv) > 4 else concurrency
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
    async with httpx.AsyncClient(timeout=5.0, limits=limits) as client:
        await sweep(client, sem, servers)  # warm-up, as for sweep_bench
        cpu0 = time.process_time()
        walls = []
        online = 0
        for _ in range(sweeps):
            t = time.perf_counter()
            results = await sweep(client, sem, servers)
            walls.append(time.perf_counter() - t)
            online = sum(1 for r in results if r is not None)
        cpu = (time.process_time() - cpu0) / sweeps
    walls.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "python-httpx", "servers": len(servers), "online": online,
                      "sweep_s": round(walls[len(walls) // 2], 4), "cpu_s": round(cpu, 4),
                      "peak_rss_mib": round(rss, 1)}))


asyncio.run(main())

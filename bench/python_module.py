"""Benchmark helper: sweeps a fleet with the ipvtl Python module, like
sweep_bench and httpx_poller (one JSON line).

usage: python_module.py SERVERS.json SWEEPS CONCURRENCY
"""
import json
import resource
import sys
import time

import ipvtl

path, sweeps, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cluster = ipvtl.Cluster.from_file(path, concurrency=concurrency, timeout=5.0, background=False)
cluster.poll()  # warm-up
cpu0 = time.process_time()
walls = []
online = 0
for _ in range(sweeps):
    t = time.perf_counter()
    snap = cluster.poll()
    walls.append(time.perf_counter() - t)
    online = sum(1 for s in snap.servers if s.health == "online")
cpu = (time.process_time() - cpu0) / sweeps
walls.sort()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"impl": "python-ipvtl", "servers": len(snap.servers), "online": online,
                  "sweep_s": round(walls[len(walls) // 2], 4), "cpu_s": round(cpu, 4),
                  "peak_rss_mib": round(rss, 1)}))

"""Summaries for scripts/profile (issue 11): groups perf symbols, turns a
callgrind dump into instructions and allocator calls per poll, reads
massif's peak heap and its allocation sites, and RSS / CPU per poll.

python3 bench/profile_report.py perf-groups PERF_SYMBOLS_TXT
python3 bench/profile_report.py callgrind DUMP POLLS_LO POLLS_HI SWEEPS N
python3 bench/profile_report.py massif WORKDIR N...
python3 bench/profile_report.py rss RSS_TXT
"""
import re
import sys
from collections import defaultdict

# Coarse groups by symbol name, first match wins.
GROUPS = [
    ("allocator (malloc/free/realloc)",
     r"^(__libc_)?(malloc|free|cfree|realloc|calloc)$|_int_malloc|_int_free|_int_realloc|malloc_consolidate|"
     r"unlink_chunk|tcache|__rust_(alloc|dealloc|realloc)|__rdl_|sysmalloc|arena_|alloc_perturb"),
    ("memcpy/memmove/memset/strlen", r"mem(cpy|move|set|cmp|chr)|str(len|cmp|chr)|__memcpy|__memset"),
    ("curl (incl. its printf)",
     r"^(Curl|curl|cpool|cf_|cw_|cr_|multi_|mev_|conn_|http_|parsefmt|formatf|addbyter|out_number|str_num_base|"
     r"setopt_|parseurl|sock|hostcache|dyn_|client_|xfer_|alloc_addbyter|ipv4_normalize|urlencode|junkscan)"),
    ("isahc", r"isahc"),
    ("serde / serde_json", r"serde"),
    ("async runtime, wake-ups, locks (tokio, async-io, event-listener, parking, polling, futex)",
     r"tokio|async_io|async_executor|async_task|async_channel|event_listener|parking|polling|concurrent_queue|"
     r"futures|blocking::|futex|pthread|std::sync|std::thread|crossbeam|epoll|__lll_|sched_yield"),
    ("sqlite", r"sqlite"),
    ("hyper / axum / http", r"hyper|axum|^http::|<http::|tower|h2::|httparse"),
    ("hashing / hash maps", r"hashbrown|siphash|core::hash|Hasher|ahash|foldhash|BuildHasher"),
    ("BTreeMap, String / Vec clones and growth",
     r"alloc::collections::btree|<alloc::string::String as core::clone|<alloc::vec::Vec<T,A> as core::clone|"
     r"raw_vec|spec_from_iter|drop_in_place<alloc::"),
    ("tracing spans", r"tracing"),
    ("formatting (core::fmt)", r"core::fmt|alloc::fmt|fmt::write|Formatter|float_to_decimal|dec2flt|ryu|itoa|zmij|FromStr>::from_str"),
    ("ipvtl code", r"ipvtl"),
    ("kernel", r"^\[k\]|\[kernel|^entry_|^__x64_sys|^do_syscall|^syscall"),
]


def group_of(name):
    name = re.sub(r"@+GLIBC.*$", "", name)
    for label, pattern in GROUPS:
        if re.search(pattern, name):
            return label
    return "other"


def short(name, width=110):
    name = re.sub(r"::h[0-9a-f]{16}\b", "", name)
    name = re.sub(r" \[[^\]]*\]$", "", name)
    return name if len(name) <= width else name[: width - 3] + "..."


def perf_groups(path):
    sums = defaultdict(float)
    for line in open(path, errors="replace"):
        m = re.match(r"^\s+([\d.]+)%\s+(\[[.k]\])\s+(.*)$", line)
        if m:
            pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
            sums["kernel" if kind == "[k]" else group_of(sym)] += pct
    print("self time by group (perf symbols >= 0.05 %):")
    for label, pct in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"  {pct:5.1f} %  {label}")


def callgrind_parse(dump):
    """Total, self and inclusive Ir per function name, and allocator calls,
    read from the dump itself (callgrind_annotate 3.19 puts every self cost
    on `clone` for these dumps)."""
    names = {}
    total = None
    self_ir, incl_ir, calls = defaultdict(int), defaultdict(int), defaultdict(int)
    fn, cfn, after_calls, ncalls = None, None, False, 0

    def name_of(kind_id, rest):
        if rest:
            names[kind_id] = rest
        return names.get(kind_id, "???")

    for line in open(dump, errors="replace"):
        line = line.rstrip("\n")
        if not line:
            continue
        c = line[0]
        if c.isdigit() or c in "+-*":
            parts = line.split()
            ir = int(parts[1]) if len(parts) > 1 else 0
            if after_calls:
                incl_ir[fn] += ir
                base = re.sub(r"^__libc_", "", cfn.split("'")[0])
                if base in ("malloc", "calloc", "realloc", "free", "cfree"):
                    calls[base] += ncalls
                after_calls = False
            else:
                self_ir[fn] += ir
                incl_ir[fn] += ir
            continue
        m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line)
        if m:
            n = name_of(("fn", m.group(2)), m.group(3))
            if m.group(1) == "fn":
                fn = n
            else:
                cfn = n
            continue
        if line.startswith("calls="):
            after_calls, ncalls = True, int(line.split("=")[1].split()[0])
        elif line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
    return total, self_ir, incl_ir, calls


def callgrind(dump, polls_lo, polls_hi, sweeps, n):
    polls_lo, polls_hi, sweeps, n = int(polls_lo), int(polls_hi), int(sweeps), int(n)
    total, self_ir, incl_ir, calls = callgrind_parse(dump)
    print(f"instructions (Ir) in the window: {total:,}")
    print(f"instructions per poll: {total / polls_hi:,.0f} .. {total / polls_lo:,.0f} "
          f"(Ir / polls the simulator answered, {polls_lo:,} .. {polls_hi:,} as read before and after the dump)")
    if sweeps > 0:
        print(f"  cross-check: Ir / (ipvtl_sweeps_total difference {sweeps} x N {n}) = {total / (sweeps * n):,.0f}")
    mid = (polls_lo + polls_hi) / 2
    if calls:
        print("allocator calls per poll: " + ", ".join(f"{k} {v / mid:,.1f}" for k, v in sorted(calls.items())))
    sums = defaultdict(int)
    for name, ir in self_ir.items():
        sums[group_of(name)] += ir
    print("self instructions by group:")
    for label, ir in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"  {100 * ir / total:5.1f} %  {ir / mid:9,.0f} Ir/poll  {label}")
    print("top functions (self):")
    for name, ir in sorted(self_ir.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {100 * ir / total:5.1f} %  {ir / mid:9,.0f} Ir/poll  {short(name)}")
    print("top functions (inclusive; recursion counted more than once), ipvtl and library entry points:")
    shown = 0
    for name, ir in sorted(incl_ir.items(), key=lambda kv: -kv[1]):
        if re.search(r"ipvtl|isahc|curl_multi|Curl_|serde_json|sqlite3_step|hyper|axum|brotli|flate|miniz", name) and \
                not re.search(r"^<?core::|^<?std::|^<?alloc::", name):
            print(f"  {min(100.0, 100 * ir / total):5.1f} %  {short(name)}")
            shown += 1
            if shown == 30:
                break


GENERIC = re.compile(
    r"^(\(heap allocation functions\)|malloc|calloc|realloc|__libc_|__rust_|__rdl_|__rg_|<?alloc::|<?core::|"
    r"<?hashbrown::|<?std::|<?bytes::|<?serde::|<?serde_json::|<?smallvec|<?indexmap|\?\?\?|<?T as |<?\[|"
    r"<?&|<?F as |<?futures|<?tokio|<?async_|<?event_listener)")


def massif_peak(path):
    lines = open(path, errors="replace").read().splitlines()
    snaps, cur = [], None
    for i, line in enumerate(lines):
        if line.startswith("snapshot="):
            cur = {"tree": None}
            snaps.append(cur)
        elif cur is not None and "=" in line and not line.startswith(" ") and not line.startswith("n"):
            k, _, v = line.partition("=")
            if k in ("time", "mem_heap_B", "mem_heap_extra_B", "mem_stacks_B"):
                cur[k] = int(v)
            elif k == "heap_tree":
                cur["kind"] = v
                if v in ("peak", "detailed"):
                    cur["tree_at"] = i + 1
    peak = next((s for s in snaps if s.get("kind") == "peak"), None)
    if peak is None:
        peak = max(snaps, key=lambda s: s["mem_heap_B"] + s["mem_heap_extra_B"])
    last = snaps[-1]
    tree = []
    if "tree_at" in peak:
        for line in lines[peak["tree_at"]:]:
            m = re.match(r"^( *)n(\d+): (\d+) (.*)$", line)
            if not m:
                break
            tree.append((len(m.group(1)), int(m.group(3)), m.group(4)))
    return peak, last, tree


def frame_name(desc):
    m = re.match(r"^0x[0-9A-Fa-f]+: (.*?)(?: \((?:in )?[^()]*\))?$", desc)
    return short(m.group(1) if m else desc, 120)


def massif_sites(tree):
    """Bytes at the peak by first non-generic frame and by first ipvtl frame."""
    first, ours = defaultdict(int), defaultdict(int)
    # Rebuild the tree as (bytes, name, children).
    stack, root = [], None
    for depth, size, desc in tree:
        node = [size, desc, []]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            stack[-1][1][2].append(node)
        else:
            root = node
        stack.append((depth, node))

    def walk(node, site, mine):
        size, desc, kids = node
        if desc.startswith("in ") and "below massif's threshold" in desc:
            first[site or "(below threshold)"] += size
            ours[mine or "(below threshold)"] += size
            return
        name = frame_name(desc)
        # Inlined frames come without a path (`with_capacity_in<...>`,
        # `UnknownInlinedFun`): generic too.
        inlined = "::" not in name.split("<")[0] and (name == "UnknownInlinedFun" or name.startswith("{closure") or re.match(r"^[a-z0-9_]+(<|$)", name))
        if site is None and not GENERIC.match(name) and not inlined:
            site = name
        if mine is None and re.match(r"^<?ipvtl_", name):
            mine = name
        covered = sum(k[0] for k in kids)
        for k in kids:
            walk(k, site, mine)
        rest = size - covered
        if rest > 0:
            first[site or name] += rest
            ours[mine or f"(no ipvtl frame; {site or name})"] += rest

    if root:
        for k in root[2]:
            walk(k, None, None)
    return first, ours


def massif(work, sizes):
    sizes = [int(s) for s in sizes]
    peaks = {}
    for m in sizes:
        peak, last, tree = massif_peak(f"{work}/massif-{m}.out")
        total = peak["mem_heap_B"] + peak["mem_heap_extra_B"]
        peaks[m] = (total, last["mem_heap_B"] + last["mem_heap_extra_B"], peak, tree)
        print(f"N = {m}: peak heap {total / 2**20:.1f} MiB ({peak['mem_heap_B'] / 2**20:.1f} MiB asked + "
              f"{peak['mem_heap_extra_B'] / 2**20:.1f} MiB allocator overhead), at the end "
              f"{peaks[m][1] / 2**20:.1f} MiB; {total / m / 1024:.1f} KiB per server including the base")
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        per = (peaks[hi][0] - peaks[lo][0]) / (hi - lo)
        end = (peaks[hi][1] - peaks[lo][1]) / (hi - lo)
        base = peaks[lo][0] - per * lo
        print(f"heap per server: ({hi} vs {lo}) {per / 1024:.1f} KiB at the peak, {end / 1024:.1f} KiB at the end; "
              f"fixed base about {base / 2**20:.1f} MiB")
    big, small = max(sizes), min(sizes)
    total = peaks[big][0]
    sites = {m: massif_sites(peaks[m][3]) for m in sizes}
    for which, title in ((0, "first frame outside std/alloc/serde/hashbrown/runtime"), (1, "first ipvtl frame")):
        print(f"top allocation sites at the peak, N = {big}, by {title}"
              + (f"; growth per server from N = {small}:" if big != small else ":"))
        hi = sites[big][which]
        lo = sites[small][which]
        for name, b in sorted(hi.items(), key=lambda kv: -kv[1])[:12]:
            grow = f"{(b - lo.get(name, 0)) / (big - small):8,.0f} B/server" if big != small else ""
            print(f"  {100 * b / total:5.1f} %  {b / 2**20:6.1f} MiB  {grow}  {name}")


def rss(path):
    rows = [l.split() for l in open(path) if l.strip()]
    by = {}
    for m, rss_kb, hwm_kb, c0, c1, p0, p1, hz, s1 in rows:
        m, rss_kb, hwm_kb = int(m), int(rss_kb), int(hwm_kb)
        cpu_s = (int(c1) - int(c0)) / int(hz)
        polls = int(p1) - int(p0)
        by[m] = (rss_kb, hwm_kb)
        print(f"N = {m}: RSS {rss_kb / 1024:.1f} MiB (peak {hwm_kb / 1024:.1f} MiB) after {s1} sweeps, "
              f"{rss_kb / m:.1f} KiB per server including the base; CPU {cpu_s:.2f} s for {polls:,} polls = "
              f"{1e6 * cpu_s / polls:.0f} us per poll")
    if len(by) >= 2:
        lo, hi = min(by), max(by)
        per = (by[hi][0] - by[lo][0]) / (hi - lo)
        hwm = (by[hi][1] - by[lo][1]) / (hi - lo)
        print(f"RSS per server ({hi} vs {lo}): {per:.1f} KiB (peak RSS: {hwm:.1f} KiB); "
              f"fixed base about {(by[lo][0] - per * lo) / 1024:.1f} MiB")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"perf-groups": perf_groups, "callgrind": callgrind, "massif": lambda w, *s: massif(w, s), "rss": rss}[cmd](*args)

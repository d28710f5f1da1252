#!/usr/bin/env python3
"""Turns proxy_bench.sh's raw results (tab-separated) into markdown tables.

Raw line kinds (first field):
  meta    KEY VALUE
  redis   ROUND TARGET TEST PIPELINE REQUESTS RPS WALL_S PROXY_TICKS REDIS_TICKS CLIENT_CPU_S
          MACHINE_BUSY_TICKS
  redisproto  the same fields, for section 6 (targets include twemproxy and sluice-redis,
          the sluice `redis` listener; "sluice" is its `tcp` listener)
  redisops LISTENER OP SENT OK OTHER  (section 6: sluice_ops_total{listener,op} growth over
          the measured runs, outcome ok / any other outcome, and the commands
          redis-benchmark sent through that listener)
  bulk    ROUND TARGET DIR BYTES SECONDS PROXY_TICKS
  idle    TARGET COUNT RSS_BEFORE_KB RSS_AFTER_KB BYTES_PER_CONN
  strace  TARGET PIPELINE REQUESTS SYSCALL CALLS
  perf    TARGET PIPELINE REQUESTS EVENT COUNT   (perf stat: syscall tracepoints,
          "total" = all syscalls, context-switches, task-clock in ms)
  perfbulk TARGET DIR BYTES EVENT COUNT  (the same during one bulk transfer)
PROXY_TICKS is "-" for the direct (no proxy) target.

Every figure is the median over rounds; "spread" is the largest (max - min) / median over
the cells of that row, a rough noise gauge.

Usage: summarize.py RAW.tsv
"""

import statistics
import sys
from collections import defaultdict

PROXIES = ["haproxy", "nginx", "sluice"]
NAMES = {"direct": "direct", "haproxy": "HAProxy", "nginx": "nginx stream", "sluice": "sluice"}
# Section 6: sluice's redis listener against byte pumps and twemproxy.
REDIS_PROXIES = ["haproxy", "nginx", "twemproxy", "sluice", "sluice-redis"]
REDIS_NAMES = dict(NAMES, sluice="sluice tcp", twemproxy="twemproxy", **{"sluice-redis": "sluice redis"})
# The ratio columns of section 6: sluice redis / each of these.
REDIS_VERSUS = ["haproxy", "nginx", "twemproxy", "sluice"]
REDIS_VERSUS_NAMES = {"haproxy": "HAProxy", "nginx": "nginx", "twemproxy": "twemproxy", "sluice": "sluice tcp"}


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def med(values):
    return statistics.median(values) if values else None


def spread(values):
    if len(values) < 2:
        return 0.0
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m else 0.0


def main():
    meta = {}
    redis = defaultdict(lambda: defaultdict(list))  # (test, P) -> metric/target -> [values]
    redisproto = defaultdict(lambda: defaultdict(list))  # the same, section 6
    redisops = []
    bulk = defaultdict(lambda: defaultdict(list))
    idle = {}
    strace = defaultdict(dict)  # (target, P) -> {syscall: calls}
    strace_reqs = {}
    perf = defaultdict(dict)
    perf_reqs = {}
    perfbulk = defaultdict(dict)
    perfbulk_bytes = {}
    with open(sys.argv[1]) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if not p or not p[0]:
                continue
            kind = p[0]
            if kind == "meta":
                meta[p[1]] = p[2]
            elif kind in ("redis", "redisproto"):
                _, _rnd, target, test, pipe, reqs, rps, wall, pticks, rticks, ccpu, busy = p
                hz = float(meta.get("clk_tck", 100))
                key = (test, int(pipe))
                reqs, rps, wall = int(reqs), float(rps), float(wall)
                d = (redis if kind == "redis" else redisproto)[key]
                d["rps", target].append(rps)
                d["cores_client", target].append(float(ccpu) / wall)
                d["cores_redis", target].append(int(rticks) / hz / wall)
                own = float(ccpu) + (int(rticks) + (0 if pticks == "-" else int(pticks))) / hz
                d["cores_other", target].append((int(busy) / hz - own) / wall)
                if pticks != "-":
                    cpu_s = int(pticks) / hz
                    d["cpu_us", target].append(cpu_s * 1e6 / reqs)
                    d["cores_proxy", target].append(cpu_s / wall)
            elif kind == "redisops":
                _, listener, op, sent, ok, other = p
                redisops.append((listener, op, int(sent), int(ok), int(other)))
            elif kind == "bulk":
                _, _rnd, target, direction, nbytes, secs, pticks = p
                hz = float(meta.get("clk_tck", 100))
                nbytes, secs = int(nbytes), float(secs)
                bulk[direction]["mibps", target].append(nbytes / secs / (1 << 20))
                if pticks != "-":
                    bulk[direction]["cpu_ms_gib", target].append(
                        int(pticks) / hz * 1000 / (nbytes / (1 << 30)))
            elif kind == "idle":
                _, target, count, before, after, per = p
                idle[target] = (int(count), int(before), int(after), float(per))
            elif kind == "strace":
                _, target, pipe, reqs, syscall, calls = p
                strace[target, int(pipe)][syscall] = int(calls)
                strace_reqs[target, int(pipe)] = int(reqs)
            elif kind == "perf":
                _, target, pipe, reqs, event, count = p
                perf[target, int(pipe)][event] = float(count)
                perf_reqs[target, int(pipe)] = int(reqs)
            elif kind == "perfbulk":
                _, target, direction, nbytes, event, count = p
                perfbulk[target, direction][event] = float(count)
                perfbulk_bytes[target, direction] = int(nbytes)

    out = []
    w = out.append
    rounds = meta.get("rounds", "?")
    w(f"Run {meta.get('date', '?')} on {meta.get('machine', '?')}; median of {rounds} rounds.")
    w("")

    def redis_tables(data, proxies, names, subject, versus, versus_names, rps_title, cpu_title, after_cpu=None,
                     cores_prefix=""):
        """Requests/s, proxy CPU per request and where the cores went, for one redis-benchmark
        section; ratio columns are `subject` over each of `versus`."""
        targets = ["direct"] + proxies
        keys = sorted(data, key=lambda k: (k[1], k[0] != "set"))
        ratio_heads = "".join(f" {names[subject]}/{versus_names[v]} |" for v in versus)
        ratio_rule = "---|" * len(versus)

        def ratios(m):
            return "".join(f" {ratio(m[subject], m[v])} |" for v in versus)

        w(rps_title)
        w("")
        w("| test | pipeline | requests | " + " | ".join(names[t] for t in targets) + " |" + ratio_heads + " spread |")
        w("|---|---|---|" + "---|" * len(targets) + ratio_rule + "---|")
        for (test, pipe) in keys:
            d = data[test, pipe]
            m = {t: med(d["rps", t]) for t in targets}
            sp = max(spread(d["rps", t]) for t in targets)
            reqs = meta.get(f"n_p{pipe}", "?")
            w(f"| {test.upper()} | {pipe} | {reqs} | " + " | ".join(fmt(m[t]) for t in targets)
              + " |" + ratios(m) + f" {sp:.0%} |")
        w("")
        w(cpu_title)
        w("")
        w("| test | pipeline | " + " | ".join(names[t] for t in proxies) + " |" + ratio_heads + " spread |")
        w("|---|---|" + "---|" * len(proxies) + ratio_rule + "---|")
        cpu = {}
        for (test, pipe) in keys:
            d = data[test, pipe]
            m = cpu[test, pipe] = {t: med(d["cpu_us", t]) for t in proxies}
            sp = max(spread(d["cpu_us", t]) for t in proxies)
            w(f"| {test.upper()} | {pipe} | " + " | ".join(fmt(m[t], 2) for t in proxies)
              + " |" + ratios(m) + f" {sp:.0%} |")
        w("")
        if after_cpu:
            after_cpu(cpu)
        w(f"### {cores_prefix}Where the 2 cores went (median cores busy: client / redis-server / proxy; other = rest of the machine)")
        w("")
        w("| test | pipeline | " + " | ".join(names[t] for t in targets) + " |")
        w("|---|---|" + "---|" * len(targets))
        for (test, pipe) in keys:
            d = data[test, pipe]
            cells = []
            for t in targets:
                c, r, pr = med(d["cores_client", t]), med(d["cores_redis", t]), med(d["cores_proxy", t])
                o = med(d["cores_other", t])
                if c is None:
                    cells.append("n/a")
                    continue
                total = (c or 0) + (r or 0) + (pr or 0)
                cells.append(f"{c:.2f} / {r:.2f} / {'-' if pr is None else f'{pr:.2f}'} (Σ {total:.2f}; other {o:.2f})")
            w(f"| {test.upper()} | {pipe} | " + " | ".join(cells) + " |")
        w("")

    if redis:
        redis_tables(redis, PROXIES, NAMES, "sluice", ["haproxy", "nginx"], {"haproxy": "HAProxy", "nginx": "nginx"},
                     "### Redis through a TCP proxy: `redis-benchmark -c 50` (requests/s, higher is better)",
                     "### Proxy CPU per request (µs of user+system time, lower is better)")

    def redis_target(cpu):
        # The target: sluice `redis` at or below nginx stream's CPU per request at
        # -P 16, while parsing every command.
        cells = []
        for (test, pipe), m in cpu.items():  # SET first, as in the tables
            if pipe != 16:
                continue
            r, n = m.get("sluice-redis"), m.get("nginx")
            if r is None or n is None:
                verdict = "n/a"
            else:
                verdict = "met" if r <= n else "**not met**"
            cells.append(f"{test.upper()} {fmt(r, 2)} vs {fmt(n, 2)} µs ({ratio(r, n)}): {verdict}")
        if cells:
            # CPU time comes in clock ticks; say how coarse that is at this request count.
            tick_us = 1e6 / float(meta.get("clk_tck", 100)) / int(meta.get("n_p16", 1))
            w("Target: sluice `redis` CPU per request at or below nginx stream's at -P 16 — " + "; ".join(cells)
              + f". (Resolution: one clock tick = {tick_us:.3g} µs/req at {int(meta.get('n_p16', 0)):,} requests.)")
            w("")

    if redisproto:
        redis_tables(redisproto, REDIS_PROXIES, REDIS_NAMES, "sluice-redis", REDIS_VERSUS, REDIS_VERSUS_NAMES,
                     "### Redis listener: sluice `redis` (parses every command, stats on) vs byte pumps and "
                     "twemproxy, `redis-benchmark -c 50` (requests/s, higher is better)",
                     "### Redis listener: proxy CPU per request (µs of user+system time, lower is better)",
                     after_cpu=redis_target, cores_prefix="Redis listener: ")
    if redisops:
        w("### Redis listener's own count (`sluice_ops_total` from the admin `/metrics`, growth over the measured runs)")
        w("")
        w("| series | counted | redis-benchmark sent | check |")
        w("|---|---|---|---|")
        for listener, op, sent, ok, other in redisops:
            check = "equal" if ok == sent else f"**MISMATCH** ({ok - sent:+,})"
            if other:
                check += f"; {other:,} with another outcome"
            w(f'| `sluice_ops_total{{listener="{listener}",op="{op}",outcome="ok"}}` | {ok:,} | {sent:,} | {check} |')
        w("")

    if bulk:
        size = meta.get("bulk_bytes", "?")
        w(f"### Bulk transfer, one connection, {int(size) / (1 << 30):g} GiB per run, median of "
          f"{meta.get('bulk_rounds', rounds)} rounds (MiB/s, higher is better)")
        w("")
        w("| direction | direct | HAProxy | nginx stream | sluice | sluice/HAProxy | sluice/nginx | spread |")
        w("|---|---|---|---|---|---|---|---|")
        labels = {"up": "client → upstream", "down": "upstream → client"}
        for direction in ["up", "down"]:
            if direction not in bulk:
                continue
            d = bulk[direction]
            m = {t: med(d["mibps", t]) for t in ["direct"] + PROXIES}
            sp = max(spread(d["mibps", t]) for t in ["direct"] + PROXIES)
            w(f"| {labels[direction]} | " + " | ".join(fmt(m[t]) for t in ["direct"] + PROXIES)
              + f" | {ratio(m['sluice'], m['haproxy'])} | {ratio(m['sluice'], m['nginx'])} | {sp:.0%} |")
        w("")
        w("### Proxy CPU per GiB moved (ms of user+system time, lower is better)")
        w("")
        w("| direction | HAProxy | nginx stream | sluice | sluice/HAProxy | sluice/nginx | spread |")
        w("|---|---|---|---|---|---|---|")
        for direction in ["up", "down"]:
            if direction not in bulk:
                continue
            d = bulk[direction]
            m = {t: med(d["cpu_ms_gib", t]) for t in PROXIES}
            sp = max(spread(d["cpu_ms_gib", t]) for t in PROXIES)
            w(f"| {labels[direction]} | " + " | ".join(fmt(m[t]) for t in PROXIES)
              + f" | {ratio(m['sluice'], m['haproxy'])} | {ratio(m['sluice'], m['nginx'])} | {sp:.0%} |")
        w("")

    if idle:
        w("### Idle connections: proxy RSS growth (each connection = 2 sockets in the proxy)")
        w("")
        w("| proxy | idle connections | VmRSS before (KiB) | VmRSS after (KiB) | bytes per connection | sluice/this |")
        w("|---|---|---|---|---|---|")
        s = idle.get("sluice", (0, 0, 0, None))[3]
        for t in PROXIES:
            if t in idle:
                count, before, after, per = idle[t]
                w(f"| {NAMES[t]} | {count:,} | {before:,} | {after:,} | {per:,.0f} | {ratio(s, per)} |")
        w("")

    if strace:
        w("### Syscalls per request under `strace -c -f` (short run, SET, `-c 50`; strace slows the proxy, counts are what matter)")
        w("")
        pipes = sorted({p for (_, p) in strace})
        for pipe in pipes:
            targets = [t for t in PROXIES if (t, pipe) in strace]
            calls = defaultdict(dict)
            for t in targets:
                for sc, n in strace[t, pipe].items():
                    calls[sc][t] = n / strace_reqs[t, pipe]
            # Keep the syscalls that matter: >= 0.01 per request for some proxy.
            rows = sorted((sc for sc in calls if sc != "total" and max(calls[sc].values()) >= 0.01),
                          key=lambda sc: -max(calls[sc].values()))
            w(f"Pipeline {pipe} ({', '.join(f'{NAMES[t]}: {strace_reqs[t, pipe]:,} requests' for t in targets)}):")
            w("")
            w("| syscall | " + " | ".join(NAMES[t] for t in targets) + " |")
            w("|---|" + "---|" * len(targets))
            for sc in rows:
                w(f"| {sc} | " + " | ".join(f"{calls[sc].get(t, 0):.3f}" for t in targets) + " |")
            w("| **total** | " + " | ".join(f"**{calls['total'].get(t, 0):.3f}**" for t in targets) + " |")
            w("")

    def perf_tables(data, units, cases, unit_name, case_label, min_rate):
        for case in cases:
            targets = [t for t in PROXIES if (t, case) in data]
            if not targets:
                continue
            rate = {t: {e: v / units[t, case] for e, v in data[t, case].items()} for t in targets}
            special = {"total", "context-switches", "task-clock"}
            events = sorted({e for t in targets for e in rate[t]} - special,
                            key=lambda e: -max(rate[t].get(e, 0) for t in targets))
            rows = ["total"] + [e for e in events if max(rate[t].get(e, 0) for t in targets) >= min_rate] \
                + ["context-switches", "task-clock"]
            w(f"{case_label(case)} ({', '.join(f'{NAMES[t]}: {units[t, case]:,} {unit_name}' for t in targets)}):")
            w("")
            w(f"| per {unit_name.rstrip('s')} | " + " | ".join(NAMES[t] for t in targets) + " |")
            w("|---|" + "---|" * len(targets))
            for e in rows:
                scale, digits, label = 1.0, 3, e
                if e == "task-clock":
                    label, scale, digits = "CPU µs (task-clock; inflated by the tracing)", 1000.0, 2
                elif e == "total":
                    label = "**all syscalls**"
                cells = ["n/a" if rate[t].get(e) is None else f"{rate[t][e] * scale:.{digits}f}" for t in targets]
                w(f"| {label} | " + " | ".join(cells) + " |")
            w("")

    if perf:
        w("### Syscalls and context switches per request under `perf stat` (SET run with the same N as the measured runs, `-c 50`; counting only, no strace slowdown)")
        w("")
        perf_tables(perf, perf_reqs, sorted({p for (_, p) in perf}), "requests", lambda p: f"Pipeline {p}", 0.005)
    if perfbulk:
        w("### Syscalls and context switches per MiB during one bulk transfer, under `perf stat`")
        w("")
        mib = {k: v // (1 << 20) for k, v in perfbulk_bytes.items()}
        perf_tables(perfbulk, mib, ["up", "down"], "MiBs",
                    lambda d: {"up": "client → upstream", "down": "upstream → client"}[d], 0.05)

    print("\n".join(out))


if __name__ == "__main__":
    main()

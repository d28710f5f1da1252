#!/usr/bin/env python3
"""Idle-connection memory probe for proxy_bench.sh.

Opens COUNT TCP connections to a proxy in batches, waits after each batch until the proxy
has opened as many upstream connections (ESTABLISHED sockets whose remote port is the
upstream port, counted with `ss`), lets things settle, and reads the proxy's VmRSS
before and after. Then checks that a sample of the connections still works (Redis PING
through the proxy), closes everything and waits for the proxy's upstream sockets to go.

  idle_conns.py --port P --upstream-port U --pid PID --count N [--batch B] [--settle S]

Prints one line: "<count> <rss_before_kB> <rss_after_kB> <bytes_per_conn>".
The proxy holds two sockets per connection (downstream + upstream); the figure is the
RSS growth divided by the number of client connections.
"""

import argparse
import random
import resource
import socket
import subprocess
import sys
import time


def vmrss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def established_to(port):
    """Number of ESTABLISHED TCP sockets whose remote port is `port`."""
    out = subprocess.run(
        ["ss", "-Htn", "state", "established", "dport", "=", f":{port}"],
        check=True, capture_output=True, text=True,
    ).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def wait_for(port, want, timeout, at_least=True):
    deadline = time.monotonic() + timeout
    while True:
        have = established_to(port)
        if (have >= want) if at_least else (have <= want):
            return have
        if time.monotonic() > deadline:
            return have
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--upstream-port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--settle", type=float, default=3.0)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    base_upstream = established_to(args.upstream_port)
    time.sleep(0.5)
    before = vmrss_kb(args.pid)
    socks = []
    try:
        while len(socks) < args.count:
            for _ in range(min(args.batch, args.count - len(socks))):
                s = socket.create_connection((args.host, args.port), timeout=10)
                socks.append(s)
            want = base_upstream + len(socks)
            have = wait_for(args.upstream_port, want, 20)
            if have < want:
                print(f"idle_conns: proxy has {have - base_upstream} of {len(socks)} upstream "
                      f"connections after 20 s", file=sys.stderr)
                sys.exit(1)
        time.sleep(args.settle)
        after = vmrss_kb(args.pid)
        # A few more samples: take the highest, so a lazily growing RSS is not missed.
        for _ in range(3):
            time.sleep(0.5)
            after = max(after, vmrss_kb(args.pid))

        # Prove the connections are alive end to end: PING a sample of them.
        for s in random.sample(socks, min(50, len(socks))):
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            if reply != b"+PONG\r\n":
                print(f"idle_conns: PING through proxy got {reply!r}", file=sys.stderr)
                sys.exit(1)
    finally:
        for s in socks:
            s.close()
    wait_for(args.upstream_port, base_upstream, 30, at_least=False)
    per_conn = (after - before) * 1024 / args.count
    print(f"{args.count} {before} {after} {per_conn:.0f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Bulk-transfer client for proxy_bench.sh (talks to bulk_upstream.py, directly or through
a proxy).

  bulk_client.py HOST PORT up   BYTES   client -> (proxy) -> upstream sink
  bulk_client.py HOST PORT down BYTES   upstream source -> (proxy) -> client

Prints "<bytes> <seconds>" on success; exits 1 if the byte count does not match.
"""

import socket
import sys
import time

CHUNK = 1 << 20
PAYLOAD = memoryview(b"\x5a" * CHUNK)


def upload(sock, total):
    sock.sendall(b"SINK\n")
    left = total
    while left > 0:
        n = min(left, CHUNK)
        sock.sendall(PAYLOAD[:n])
        left -= n
    sock.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        got = sock.recv(64)
        if not got:
            break
        reply += got
    return int(reply.strip() or b"-1")


def download(sock, total):
    sock.sendall(b"SOURCE %d\n" % total)
    buf = bytearray(CHUNK)
    got = 0
    while True:
        n = sock.recv_into(buf)
        if n == 0:
            break
        got += n
    sock.shutdown(socket.SHUT_WR)
    return got


def main():
    host, port, mode, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    started = time.perf_counter()
    with socket.create_connection((host, port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        moved = upload(sock, total) if mode == "up" else download(sock, total)
    elapsed = time.perf_counter() - started
    if moved != total:
        print(f"bulk_client: {mode}: expected {total} bytes, got {moved}", file=sys.stderr)
        sys.exit(1)
    print(f"{moved} {elapsed:.6f}")


if __name__ == "__main__":
    main()

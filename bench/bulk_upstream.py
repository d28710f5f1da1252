#!/usr/bin/env python3
"""Bulk-transfer upstream for proxy_bench.sh: a TCP sink and source in one server.

Each connection starts with one ASCII header line:
  "SINK\\n"        read until the client's FIN, then reply "<bytes read>\\n" and close;
  "SOURCE <n>\\n"  send n bytes, then close.
One thread per connection; 1 MiB reads and writes keep Python's per-call cost small
next to the proxy under test (which reads in 16-64 KiB chunks).

Usage: bulk_upstream.py HOST PORT
"""

import socket
import socketserver
import sys

CHUNK = 1 << 20
PAYLOAD = memoryview(b"\xa5" * CHUNK)


def read_header(sock):
    """Reads up to and including the first newline; returns (line, extra bytes)."""
    data = b""
    while b"\n" not in data:
        got = sock.recv(256)
        if not got:
            return None, b""
        data += got
    line, _, rest = data.partition(b"\n")
    return line.decode("ascii", "replace").strip(), rest


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        line, rest = read_header(sock)
        if line is None:
            return
        if line == "SINK":
            total = len(rest)
            buf = bytearray(CHUNK)
            while True:
                n = sock.recv_into(buf)
                if n == 0:
                    break
                total += n
            sock.sendall(b"%d\n" % total)
        elif line.startswith("SOURCE "):
            left = int(line.split()[1])
            while left > 0:
                n = min(left, CHUNK)
                sock.sendall(PAYLOAD[:n])
                left -= n
            sock.shutdown(socket.SHUT_WR)
            # Wait for the client's FIN so the close is orderly on both sides.
            while sock.recv(CHUNK):
                pass
        else:
            sock.sendall(b"ERR unknown header\n")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with Server((host, port), Handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()

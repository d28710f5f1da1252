#!/usr/bin/env bash
# The `mongodb` listener side by side with HAProxy (mode tcp), each on one thread (sluice
# --workers 1, HAProxy nbthread 1), in front of the same SecantusDB server, in one run:
# pymongo clients (CLIENTS threads, one connection each, directConnection) run OPS
# find_one by _id and OPS insert_one against the server directly, through HAProxy and
# through sluice. Reports ops/s and proxy CPU per op (utime+stime from /proc/PID/stat),
# medians of ROUNDS interleaved runs, ratios sluice/HAProxy, and checks that sluice's
# find/insert counts equal the ops sent. The Python server is slow (~2 k ops/s on one
# core), so throughput here says little about the proxies; CPU per op is the figure. The
# codec alone: `cargo bench -p sluice-codecs --bench mongodb_decode`.
#
# Usage: bench/mongodb_bench.sh   (knobs: ROUNDS=3 OPS=3000 CLIENTS=4)
# Needs haproxy (apt) and the MongoDB venv scripts/install-peers.sh makes; not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${ROUNDS:=3}" "${OPS:=3000}" "${CLIENTS:=4}"
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
VENV=${SLUICE_MONGO_VENV:-$ROOT/target/peers/mongo-venv}
[[ -x $VENV/bin/secantusd-py ]] || { echo "no MongoDB venv at $VENV: run scripts/install-peers.sh" >&2; exit 1; }
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || { echo "missing haproxy (apt-get install haproxy)" >&2; exit 1; }
[[ -x $SLUICE ]] || (cd "$ROOT" && cargo build --release)

S=$(mktemp -d /tmp/sluice-mongo-bench.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$S"' EXIT
read -r P_DB P_HA P_SL P_ADMIN < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

"$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$P_DB" --storage-path :memory: --standalone --cache-size 256M \
    --log-level WARNING >"$S/db.log" 2>&1 &
PIDS+=($!)
cat >"$S/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen db
    bind 127.0.0.1:$P_HA
    server db 127.0.0.1:$P_DB
EOF
$(command -v haproxy || echo /usr/sbin/haproxy) -db -f "$S/haproxy.cfg" >/dev/null 2>&1 &
PIDS+=($!); HA=$!
cat >"$S/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
clusters: [ { name: db, endpoints: ["127.0.0.1:$P_DB"] } ]
listeners:
  - { name: mongo, address: 127.0.0.1:$P_SL, protocol: mongodb, cluster: db }
EOF
"$SLUICE" -c "$S/sluice.yaml" --workers 1 >"$S/sluice.log" 2>&1 &
PIDS+=($!); SL=$!

cat >"$S/load.py" <<'EOF'
import sys, threading, time
from pymongo import MongoClient
port, ops, clients, kind, base = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
conns = [MongoClient(f"mongodb://127.0.0.1:{port}/", directConnection=True, maxPoolSize=1) for _ in range(clients)]
for c in conns:
    c.admin.command("ping")
per = ops // clients
def run(i):
    coll = conns[i].bench.items
    for n in range(per):
        key = base + i * per + n
        if kind == "insert":
            coll.insert_one({"_id": key, "v": "x" * 64})
        else:
            coll.find_one({"_id": key % max(base, 1)})
start = time.monotonic()
threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(per * clients / (time.monotonic() - start))
EOF
for port in "$P_DB" "$P_HA" "$P_SL"; do
    for _ in $(seq 100); do "$VENV/bin/python" -c "
from pymongo import MongoClient; MongoClient('mongodb://127.0.0.1:$port/', directConnection=True, serverSelectionTimeoutMS=300).admin.command('ping')" 2>/dev/null && break; sleep 0.2; done
done
# Documents for find_one to find.
"$VENV/bin/python" "$S/load.py" "$P_DB" "$OPS" "$CLIENTS" insert 0 >/dev/null

ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
declare -A PORT=([direct]=$P_DB [haproxy]=$P_HA [sluice]=$P_SL)
declare -A PID=([haproxy]=$HA [sluice]=$SL)
TARGETS=(direct haproxy sluice)
base=$OPS
sent_find=0; sent_insert=0
for round in $(seq "$ROUNDS"); do
    for kind in find insert; do
        for i in "${!TARGETS[@]}"; do
            target=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
            pid=${PID[$target]:-}
            b=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            rate=$("$VENV/bin/python" "$S/load.py" "${PORT[$target]}" "$OPS" "$CLIENTS" "$kind" "$base")
            a=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            [[ $kind == insert ]] && base=$((base + OPS))
            if [[ $target == sluice ]]; then
                if [[ $kind == find ]]; then sent_find=$((sent_find + OPS)); else sent_insert=$((sent_insert + OPS)); fi
            fi
            echo "$kind $target $rate $(((a - b) * 10000))" >>"$S/runs"
            echo "[round $round] $kind $target: $rate ops/s" >&2
        done
    done
done
metric() { curl -s "http://127.0.0.1:$P_ADMIN/metrics" | awk -v op="$1" '$0 ~ "^sluice_ops_total\\{" && $0 ~ "listener=\"mongo\"" && $0 ~ "op=\"" op "\"" && $0 ~ "outcome=\"ok\"" {s += $NF} END {print s + 0}'; }
counted_find=$(metric find); counted_insert=$(metric insert)

out=$ROOT/bench/results/$(date +%F)-mongodb.md
python3 - "$S/runs" "$OPS" "$ROUNDS" "$CLIENTS" <<EOF >"$out"
import statistics, sys
runs, ops, rounds, clients = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
data = {}
for line in open(runs):
    kind, target, rate, cpu = line.split()
    data.setdefault(kind, {}).setdefault(target, []).append((float(rate), int(cpu) / ops))
print(f"pymongo, {clients} client threads, {ops} ops per run, {rounds} round(s), medians; each proxy on one thread; server SecantusDB (Python)\n")
print("| op | direct ops/s | HAProxy ops/s | sluice ops/s | ops sluice/HAProxy | µs CPU/op HAProxy | µs CPU/op sluice | CPU sluice/HAProxy |")
print("|---|---|---|---|---|---|---|---|")
for kind, t in data.items():
    med = {k: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v)) for k, v in t.items()}
    r = lambda k: med[k][0]
    u = lambda k: med[k][1]
    print(f"| {kind} | {r('direct'):.0f} | {r('haproxy'):.0f} | {r('sluice'):.0f} | {r('sluice') / r('haproxy'):.2f} | "
          f"{u('haproxy'):.1f} | {u('sluice'):.1f} | {u('sluice') / max(u('haproxy'), 1e-9):.2f} |")
print(f"\nsluice counted find {$counted_find} / sent {$sent_find}, insert {$counted_insert} / sent {$sent_insert}.")
EOF
cat "$out"

#!/usr/bin/env bash
# The `kafka` listener side by side with tansu's own proxy mode (`tansu proxy`), in front of
# the same tansu broker (memory storage), in one run: a confluent-kafka producer (acks=all,
# linger.ms=5, no compression) sends MSGS messages of SIZE bytes to the broker directly,
# through `tansu proxy` and through sluice (--workers 1). Reports msgs/s and MB/s and the
# proxies' CPU per MB (utime+stime from /proc/PID/stat), medians of ROUNDS interleaved runs,
# ratios sluice/tansu-proxy, and checks that sluice's per-topic record count equals the
# messages sent through it. Both proxies rewrite Metadata so the producer never bypasses
# them. tansu proxy runs on its own runtime's threads (it has no thread knob).
#
# Usage: bench/kafka_bench.sh   (knobs: ROUNDS=3 MSGS=200000 SIZE=100)
# Needs tansu and the Kafka venv scripts/install-peers.sh makes; not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${ROUNDS:=3}" "${MSGS:=200000}" "${SIZE:=100}"
SLUICE=${SLUICE:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice}
VENV=${SLUICE_KAFKA_VENV:-$ROOT/target/peers/kafka-venv}
TANSU=${SLUICE_TANSU:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/tansu-0.6.0/bin/tansu}
"$VENV/bin/python" -c 'import confluent_kafka' 2>/dev/null || { echo "no Kafka venv at $VENV: run scripts/install-peers.sh" >&2; exit 1; }
[[ -x $TANSU ]] || { echo "no tansu at $TANSU: run scripts/install-peers.sh" >&2; exit 1; }
[[ -x $SLUICE ]] || (cd "$ROOT" && cargo build --release)

S=$(mktemp -d /tmp/sluice-kafka-bench.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$S"' EXIT
read -r P_BR P_TP P_SL P_ADMIN < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

"$TANSU" broker --listener-url "tcp://127.0.0.1:$P_BR" --advertised-listener-url "tcp://127.0.0.1:$P_BR" \
    --storage-engine memory://tansu/ >"$S/broker.log" 2>&1 &
PIDS+=($!)
"$TANSU" proxy --listener-url "tcp://127.0.0.1:$P_TP" --advertised-listener-url "tcp://127.0.0.1:$P_TP" \
    --origin-url "tcp://127.0.0.1:$P_BR" >"$S/proxy.log" 2>&1 &
PIDS+=($!); TP=$!
cat >"$S/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
clusters: [ { name: kafka, endpoints: ["127.0.0.1:$P_BR"] } ]
listeners:
  - { name: kafka, address: 127.0.0.1:$P_SL, protocol: kafka, cluster: kafka }
EOF
"$SLUICE" -c "$S/sluice.yaml" --workers 1 >"$S/sluice.log" 2>&1 &
PIDS+=($!); SL=$!
for port in "$P_BR" "$P_TP" "$P_SL"; do
    for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break; sleep 0.1; done
done
"$TANSU" topic create bench --broker "tcp://127.0.0.1:$P_BR" --partitions 1 >/dev/null

cat >"$S/produce.py" <<'EOF'
import sys, time
from confluent_kafka import Producer
port, msgs, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
p = Producer({"bootstrap.servers": f"127.0.0.1:{port}", "acks": "all", "linger.ms": 5,
              "queue.buffering.max.messages": 1000000, "client.id": "bench"})
p.list_topics(timeout=10)
value, failed = b"x" * size, []
def cb(err, msg):
    if err is not None:
        failed.append(err)
start = time.monotonic()
for _ in range(msgs):
    while True:
        try:
            p.produce("bench", value, on_delivery=cb)
            break
        except BufferError:
            p.poll(0.01)
p.flush(120)
elapsed = time.monotonic() - start
assert not failed, failed[:3]
print(msgs / elapsed)
EOF

ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
declare -A PORT=([direct]=$P_BR [tansu-proxy]=$P_TP [sluice]=$P_SL)
declare -A PID=([tansu-proxy]=$TP [sluice]=$SL)
TARGETS=(direct tansu-proxy sluice)
sent=0
for round in $(seq "$ROUNDS"); do
    for i in "${!TARGETS[@]}"; do
        target=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
        pid=${PID[$target]:-}
        b=$([[ -n $pid ]] && ticks "$pid" || echo 0)
        rate=$("$VENV/bin/python" "$S/produce.py" "${PORT[$target]}" "$MSGS" "$SIZE")
        a=$([[ -n $pid ]] && ticks "$pid" || echo 0)
        [[ $target == sluice ]] && sent=$((sent + MSGS))
        echo "$target $rate $((a - b))" >>"$S/runs"
        echo "[round $round] $target: $rate msgs/s" >&2
    done
done
counted=$(curl -s "http://127.0.0.1:$P_ADMIN/metrics" | awk '$0 ~ "^sluice_kafka_topic_records_total\\{" && $0 ~ "topic=\"bench\"" && $0 ~ "op=\"Produce\"" {s += $NF} END {print s + 0}')

mkdir -p "$ROOT/bench/results"
out=$ROOT/bench/results/$(date +%F)-kafka.md
python3 - "$S/runs" "$MSGS" "$SIZE" "$ROUNDS" "$counted" "$sent" <<'EOF' >"$out"
import statistics, sys
runs, msgs, size, rounds, counted, sent = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
mb = msgs * size / 1e6
data = {}
for line in open(runs):
    target, rate, ticks = line.split()
    data.setdefault(target, []).append((float(rate), int(ticks) / 100 / mb * 1e3))
med = {k: (statistics.median(r for r, _ in v), statistics.median(c for _, c in v)) for k, v in data.items()}
print(f"confluent-kafka producer (librdkafka), acks=all, linger.ms=5, {msgs} x {size} B per run, {rounds} round(s), medians; broker tansu 0.6 (memory); sluice --workers 1\n")
print("| target | msgs/s | MB/s | ms CPU/MB (proxy) |")
print("|---|---|---|---|")
for k in ("direct", "tansu-proxy", "sluice"):
    r, c = med[k]
    cpu = "-" if k == "direct" else f"{c:.1f}"
    print(f"| {k} | {r:.0f} | {r * size / 1e6:.1f} | {cpu} |")
s, t = med["sluice"], med["tansu-proxy"]
print(f"\nsluice/tansu-proxy: throughput {s[0] / t[0]:.2f}x, CPU per MB {s[1] / max(t[1], 1e-9):.2f}x; "
      f"sluice/direct throughput {s[0] / med['direct'][0]:.2f}x.")
print(f"sluice counted {counted} records on topic bench / sent {sent} through it.")
EOF
cat "$out"

#!/usr/bin/env bash
# Redis `mode: pool` side by side with twemproxy (nutcracker) and HAProxy (mode tcp), each
# on one thread (sluice --workers 1 with one pooled connection per server, as twemproxy's
# default server_connections: 1; HAProxy nbthread 1), in front of the same redis-server,
# in one run: redis-benchmark -t get / -t set at -c 50 and -c 500, -P 1 and -P 16.
# Reports requests/s and proxy CPU per request (utime+stime from /proc/PID/stat), medians
# of ROUNDS interleaved runs (the target order rotates every round), and the ratios
# sluice/twemproxy — the issue's target: -P 1 rps >= 1.2x twemproxy with CPU per request
# <= 0.8x. Also checks that sluice's GET/SET counts equal what redis-benchmark sent.
#
# Usage: bench/redis_pool_bench.sh   (knobs: ROUNDS=3 N_P1=200000 N_P16=2000000 CLIENTS="50 500")
# Needs redis-server, redis-tools, nutcracker, haproxy (apt); not part of CI.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${ROUNDS:=3}" "${N_P1:=200000}" "${N_P16:=2000000}" "${CLIENTS:=50 500}"
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
for bin in redis-server redis-benchmark nutcracker haproxy; do
    command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] ||
        { echo "missing $bin (apt-get install redis-server redis-tools nutcracker haproxy)" >&2; exit 1; }
done
[[ -x $SLUICE ]] || (cd "$ROOT" && cargo build --release)

S=$(mktemp -d /tmp/sluice-pool-bench.XXXXXX)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$S"' EXIT
read -r P_REDIS P_TW P_HA P_SL P_ADMIN P_TWSTATS < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$S" --maxclients 10000 >/dev/null &
PIDS+=($!)
cat >"$S/nutcracker.yml" <<EOF
alpha:
  listen: 127.0.0.1:$P_TW
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:$P_REDIS:1
EOF
$(command -v nutcracker || echo /usr/sbin/nutcracker) -c "$S/nutcracker.yml" -s "$P_TWSTATS" >/dev/null 2>&1 &
PIDS+=($!); TW=$!
cat >"$S/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen redis
    bind 127.0.0.1:$P_HA
    server r 127.0.0.1:$P_REDIS
EOF
$(command -v haproxy || echo /usr/sbin/haproxy) -db -f "$S/haproxy.cfg" >/dev/null 2>&1 &
PIDS+=($!); HA=$!
cat >"$S/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
clusters: [ { name: r, endpoints: ["127.0.0.1:$P_REDIS"] } ]
listeners:
  - { name: pool, address: 127.0.0.1:$P_SL, protocol: redis, cluster: r, max_connections: 20000,
      redis: { mode: pool, pool: { connections: 1 } } }
EOF
"$SLUICE" -c "$S/sluice.yaml" --workers 1 >"$S/sluice.log" 2>&1 &
PIDS+=($!); SL=$!
for port in "$P_REDIS" "$P_TW" "$P_HA" "$P_SL"; do
    for _ in $(seq 50); do [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] && break; sleep 0.1; done
    [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] || { echo "nothing answers PING on $port" >&2; exit 1; }
done

ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
declare -A PORT=([direct]=$P_REDIS [haproxy]=$P_HA [twemproxy]=$P_TW [sluice]=$P_SL)
declare -A PID=([haproxy]=$HA [twemproxy]=$TW [sluice]=$SL)
TARGETS=(direct haproxy twemproxy sluice)
sent=0
for round in $(seq "$ROUNDS"); do
    for c in $CLIENTS; do for p in 1 16; do for t in get set; do
        n=$([[ $p == 1 ]] && echo "$N_P1" || echo "$N_P16")
        for i in "${!TARGETS[@]}"; do
            target=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
            pid=${PID[$target]:-}
            b=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            rps=$(redis-benchmark -h 127.0.0.1 -p "${PORT[$target]}" -c "$c" -P "$p" -n "$n" -t "$t" -r 100000 -q 2>/dev/null |
                tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | cut -d' ' -f1)
            a=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            [[ $target == sluice ]] && sent=$((sent + n))
            echo "$c $p $t $target $rps $(((a - b) * 10000))" >>"$S/runs"  # CPU in µs (100 ticks/s)
            echo "[round $round] c=$c P=$p $t $target: $rps rps" >&2
        done
    done; done; done
done
counted=$(curl -s "http://127.0.0.1:$P_ADMIN/metrics" | awk '/^sluice_ops_total\{.*listener="pool".*op="(GET|SET)".*outcome="ok"/ {s += $NF} END {print s + 0}')

out=$ROOT/bench/results/$(date +%F)-redis-pool.md
python3 - "$S/runs" "$N_P1" "$N_P16" "$ROUNDS" "$sent" "$counted" >"$out" <<'EOF'
import statistics, sys
runs, n1, n16, rounds, sent, counted = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
data = {}
for line in open(runs):
    c, p, t, target, rps, cpu = line.split()
    n = n1 if p == "1" else n16
    data.setdefault((int(c), int(p), t), {}).setdefault(target, []).append((float(rps), int(cpu) / n))
print(f"redis-benchmark -r 100000, {rounds} round(s), medians; each proxy on one thread; sluice `redis` mode: pool, 1 connection per server\n")
print("| clients | -P | test | direct rps | HAProxy rps | twemproxy rps | sluice rps | rps sluice/twemproxy | rps sluice/HAProxy | µs CPU/req HAProxy | µs CPU/req twemproxy | µs CPU/req sluice | CPU sluice/twemproxy |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for (c, p, t), targets in sorted(data.items()):
    med = {k: (statistics.median(r for r, _ in v), statistics.median(u for _, u in v)) for k, v in targets.items()}
    r = lambda k: med[k][0]
    u = lambda k: med[k][1]
    print(f"| {c} | {p} | {t} | {r('direct'):.0f} | {r('haproxy'):.0f} | {r('twemproxy'):.0f} | {r('sluice'):.0f} | "
          f"{r('sluice') / r('twemproxy'):.2f} | {r('sluice') / r('haproxy'):.2f} | {u('haproxy'):.2f} | {u('twemproxy'):.2f} | "
          f"{u('sluice'):.2f} | {u('sluice') / u('twemproxy'):.2f} |")
print(f"\nsluice counted {counted} GET/SET ok; redis-benchmark sent {sent} to it.")
EOF
cat "$out"

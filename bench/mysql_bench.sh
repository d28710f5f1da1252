#!/usr/bin/env bash
# The `mysql` listener side by side with HAProxy (mode tcp) in one run: sysbench
# oltp_point_select and oltp_read_write (server-side prepared statements, and the text
# protocol with --db-ps-mode=disable) against MariaDB directly, through HAProxy and through
# sluice `mysql` (full stats: per-op, per-table, digests), one worker/thread each.
#
# Reports per run: tps, queries per second, and the proxy's CPU per query (utime+stime
# from /proc over the run, divided by the queries sysbench reports); then ratios sluice /
# HAProxy. The issue's target: sluice >= 0.95x HAProxy's tps with CPU per query no worse.
#
#   bench/mysql_bench.sh                   # THREADS=8 SECONDS_PER_RUN=20 ROUNDS=2
#   THREADS=16 ROUNDS=3 bench/mysql_bench.sh
#
# Needs (installed as root when missing): mariadb-server mariadb-client sysbench haproxy.
# Sluice is built with `cargo build --release` when its binary is older than the sources.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-8}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-20}
ROUNDS=${ROUNDS:-2}
TABLES=${TABLES:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
SLUICE=${SLUICE:-$ROOT/target/release/sluice}

log() { printf '[mysql-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

missing=()
for pair in mariadbd:mariadb-server mariadb:mariadb-client sysbench:sysbench haproxy:haproxy; do
    bin=${pair%%:*}
    command -v "$bin" >/dev/null || [[ -x /usr/sbin/$bin ]] || missing+=("${pair#*:}")
done
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing: ${missing[*]} (as root: apt-get install -y ${missing[*]})"
    apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
if [[ $SLUICE == "$ROOT/target/release/sluice" ]]; then
    if [[ ! -x $SLUICE ]] || [[ -n $(cd "$ROOT" && find src filters codecs Cargo.toml Cargo.lock \
            -newer "$SLUICE" -type f -print -quit) ]]; then
        log "building sluice (cargo build --release)"
        (cd "$ROOT" && cargo build --release >&2)
    fi
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sluice-mysql-bench.XXXXXX")
declare -a PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if ((rc == 0)); then rm -rf "$SCRATCH"; else log "scratch kept: $SCRATCH"; fi
    exit $rc
}
trap cleanup EXIT

read -r P_DB P_HA P_SL P_ADMIN < <(python3 -c '
import socket
ports = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s); 
print(*[s.getsockname()[1] for s in ports])')

ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

log "MariaDB on $P_DB, HAProxy on $P_HA, sluice on $P_SL (admin $P_ADMIN); scratch $SCRATCH"
mariadb-install-db --no-defaults --user=root --datadir="$SCRATCH/data" --skip-test-db \
    --auth-root-authentication-method=socket >/dev/null
mariadbd --no-defaults --user=root --datadir="$SCRATCH/data" --port="$P_DB" --bind-address=127.0.0.1 \
    --socket="$SCRATCH/mysqld.sock" --pid-file="$SCRATCH/mysqld.pid" --log-error="$SCRATCH/err.log" \
    --skip-log-bin --max-connections=500 --innodb-buffer-pool-size=512M --innodb-flush-log-at-trx-commit=0 &
PIDS+=($!)
wait_port "$P_DB"
mariadb --no-defaults -S "$SCRATCH/mysqld.sock" -uroot -e "
  CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'benchpw'; GRANT ALL ON *.* TO 'bench'@'127.0.0.1';
  CREATE DATABASE sbtest;"

cat >"$SCRATCH/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen mysql
    bind 127.0.0.1:$P_HA
    server db 127.0.0.1:$P_DB
EOF
haproxy -db -f "$SCRATCH/haproxy.cfg" >"$SCRATCH/haproxy.log" 2>&1 &
HA_PID=$!; PIDS+=("$HA_PID")

cat >"$SCRATCH/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
clusters: [ { name: db, endpoints: ["127.0.0.1:$P_DB"] } ]
listeners:
  - { name: db_in, address: 127.0.0.1:$P_SL, protocol: mysql, cluster: db }
EOF
"$SLUICE" -c "$SCRATCH/sluice.yaml" --workers 1 --log-format json >"$SCRATCH/sluice.log" 2>&1 &
SL_PID=$!; PIDS+=("$SL_PID")
wait_port "$P_HA"; wait_port "$P_SL"

declare -A PORT=([direct]=$P_DB [haproxy]=$P_HA [sluice]=$P_SL)
declare -A PID=([haproxy]=$HA_PID [sluice]=$SL_PID)
sb() { # sb <test> <port> <ps-mode> <command> [args]
    local test=$1 port=$2 ps=$3 cmd=$4; shift 4
    sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" --mysql-user=bench \
        --mysql-password=benchpw --mysql-db=sbtest --mysql-ssl=off --tables="$TABLES" \
        --table-size="$TABLE_SIZE" --db-ps-mode="$ps" "$@" "$cmd"
}
log "preparing $TABLES tables of $TABLE_SIZE rows"
sb oltp_read_write "$P_DB" auto prepare >/dev/null

hz=$(getconf CLK_TCK)
printf 'test\tps_mode\tround\ttarget\ttps\tqps\tproxy_cpu_us_per_query\n' >"$SCRATCH/raw.tsv"
for round in $(seq "$ROUNDS"); do
    for test in oltp_point_select oltp_read_write; do
        for ps in auto disable; do
            for target in direct haproxy sluice; do
                pid=${PID[$target]:-}
                before=$([[ -n $pid ]] && ticks "$pid" || echo 0)
                out=$(sb "$test" "${PORT[$target]}" "$ps" run --threads="$THREADS" --time="$SECONDS_PER_RUN" --report-interval=0)
                after=$([[ -n $pid ]] && ticks "$pid" || echo 0)
                tps=$(awk '/transactions:/ { gsub(/[(]/, "", $3); print $3 }' <<<"$out")
                queries=$(awk '/queries:/ && !/performed/ { print $2; exit }' <<<"$out")
                qps=$(awk '/queries:/ && !/performed/ { gsub(/[(]/, "", $3); print $3; exit }' <<<"$out")
                cpu=$(awk -v d="$((after - before))" -v hz="$hz" -v q="$queries" \
                    'BEGIN { if (q > 0 && d > 0) printf "%.2f", d / hz * 1e6 / q; else print "-" }')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$ps" "$round" "$target" "$tps" "$qps" "$cpu" \
                    | tee -a "$SCRATCH/raw.tsv" >&2
            done
        done
    done
done

# Sluice's own count of what it saw, as a check that it parsed everything.
curl -s "http://127.0.0.1:$P_ADMIN/metrics" | grep -E '^sluice_ops_total\{.*listener="db_in"' \
    | grep -E 'outcome="(ok|error)"' | grep -v ' 0$' >"$SCRATCH/ops.txt" || true

python3 - "$SCRATCH/raw.tsv" <<'EOF'
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = collections.defaultdict(list)
for test, ps, rnd, target, tps, qps, cpu in rows:
    by[(test, ps, target)].append((float(tps), float(qps), None if cpu == "-" else float(cpu)))
print("| test | ps mode | direct tps | HAProxy tps | sluice tps | sluice/HAProxy tps | HAProxy µs CPU/query | sluice µs CPU/query | sluice/HAProxy CPU |")
print("|---|---|---|---|---|---|---|---|---|")
for test in ("oltp_point_select", "oltp_read_write"):
    for ps in ("auto", "disable"):
        med = lambda t, i: statistics.median(r[i] for r in by[(test, ps, t)])
        d, h, s = med("direct", 0), med("haproxy", 0), med("sluice", 0)
        hc, sc = med("haproxy", 2), med("sluice", 2)
        print(f"| {test} | {ps} | {d:.0f} | {h:.0f} | {s:.0f} | {s/h:.3f} | {hc:.2f} | {sc:.2f} | {sc/hc:.2f} |")
EOF
log "sluice ops seen (ok + error):"
cat "$SCRATCH/ops.txt" >&2

#!/usr/bin/env bash
# The `postgres` listener side by side with HAProxy (mode tcp) and pgbouncer (pool_mode
# session) in one run: pgbench select-only (-S) with server-side prepared statements
# (-M prepared) and the simple protocol (-M simple), and TPC-B (the default script) with
# -M prepared, against PostgreSQL directly, through HAProxy, through pgbouncer and through
# sluice `postgres` (full stats: per-op, per-table, digests; no rules), one worker/thread
# each. The target order rotates every round; the table gives medians over ROUNDS.
#
# Reports per test: tps per target, and the proxy's CPU per statement (utime+stime from
# /proc over the run, divided by the statements pgbench ran: transactions × 1 for -S,
# × 7 for TPC-B); then ratios sluice/HAProxy and sluice/pgbouncer. `spread` is the largest
# (max − min)/median of tps across the row's targets, so a ratio closer to 1 than its spread
# is a tie.
#
#   bench/postgres_bench.sh                      # CLIENTS=8 DURATION=20 ROUNDS=3 SCALE=10
#   DURATION=5 ROUNDS=1 bench/postgres_bench.sh  # smoke run: checks the script
#   SLUICE_PROTOCOL=tcp bench/postgres_bench.sh  # sluice as a plain TCP proxy, for comparison
#
# Needs (installed as root when missing): postgresql (server and pgbench), postgresql-client,
# haproxy, pgbouncer. PostgreSQL and pgbouncer refuse to run as root, so as root they run as
# the `postgres` user. Sluice is built with `cargo build --release` when its binary is older
# than the sources.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLIENTS=${CLIENTS:-8}
THREADS=${THREADS:-2}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
SLUICE_PROTOCOL=${SLUICE_PROTOCOL:-postgres}
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

log() { printf '[postgres-bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

missing=()
[[ -x $PG_BIN/postgres && -x $PG_BIN/pgbench ]] || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
command -v pgbouncer >/dev/null || [[ -x /usr/sbin/pgbouncer ]] || missing+=(pgbouncer)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || die "missing: ${missing[*]} (as root: apt-get install -y ${missing[*]})"
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
fi
PGBOUNCER=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
if [[ $SLUICE == "$ROOT/target/release/sluice" ]]; then
    if [[ ! -x $SLUICE ]] || [[ -n $(cd "$ROOT" && find src filters codecs Cargo.toml Cargo.lock \
            -newer "$SLUICE" -type f -print -quit) ]]; then
        log "building sluice (cargo build --release)"
        (cd "$ROOT" && cargo build --release >&2)
    fi
fi
[[ -x $SLUICE ]] || die "no sluice binary at $SLUICE"

# PostgreSQL and pgbouncer run as `postgres` when we are root; setpriv execs (no fork), so
# $! is the server's own pid.
as_pg=()
[[ $(id -u) == 0 ]] && as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups)

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sluice-postgres-bench.XXXXXX")
chmod 0755 "$SCRATCH"
[[ $(id -u) == 0 ]] && chown postgres: "$SCRATCH"
declare -a PIDS=()
PG_PID=""
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # SIGINT is the postmaster's fast shutdown (SIGTERM would wait for clients).
    [[ -n $PG_PID ]] && kill -INT "$PG_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    if ((rc == 0)); then rm -rf "$SCRATCH"; else log "scratch kept: $SCRATCH"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r P_DB P_HA P_PGB P_SL P_ADMIN < <(python3 -c '
import socket
ports = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s)
print(*[s.getsockname()[1] for s in ports])')

ticks() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $((f[11] + f[12])); }
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}
export PGPASSWORD=benchpw PGSSLMODE=disable PGCONNECT_TIMEOUT=10
su_psql() { psql -X -q -h "$SCRATCH" -p "$P_DB" -U postgres "$@"; }

log "PostgreSQL on $P_DB, HAProxy on $P_HA, pgbouncer on $P_PGB, sluice ($SLUICE_PROTOCOL) on $P_SL (admin $P_ADMIN); scratch $SCRATCH"
"${as_pg[@]}" "$PG_BIN/initdb" -D "$SCRATCH/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-sync --no-instructions >/dev/null
cat >"$SCRATCH/data/pg_hba.conf" <<EOF
local all all trust
host all bench 127.0.0.1/32 scram-sha-256
EOF
"${as_pg[@]}" "$PG_BIN/postgres" -D "$SCRATCH/data" -p "$P_DB" -k "$SCRATCH" -c listen_addresses=127.0.0.1 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
    -c shared_buffers=256MB >"$SCRATCH/postgres.log" 2>&1 &
PG_PID=$!
wait_port "$P_DB"
for _ in $(seq 50); do su_psql -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
su_psql -d postgres -c "CREATE USER bench PASSWORD 'benchpw'" -c "CREATE DATABASE bench OWNER bench"

cat >"$SCRATCH/haproxy.cfg" <<EOF
global
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen postgres
    bind 127.0.0.1:$P_HA
    server db 127.0.0.1:$P_DB
EOF
"$HAPROXY" -db -f "$SCRATCH/haproxy.cfg" >"$SCRATCH/haproxy.log" 2>&1 &
HA_PID=$!; PIDS+=("$HA_PID")

# pgbouncer authenticates the client itself (SCRAM against the plain password in the auth
# file) and logs in to the server with the same password; one server connection per client.
cat >"$SCRATCH/userlist.txt" <<EOF
"bench" "benchpw"
EOF
cat >"$SCRATCH/pgbouncer.ini" <<EOF
[databases]
bench = host=127.0.0.1 port=$P_DB dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $P_PGB
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $SCRATCH/userlist.txt
pool_mode = session
max_client_conn = 500
default_pool_size = $((CLIENTS + 4))
logfile = $SCRATCH/pgbouncer.log
log_connections = 0
log_disconnections = 0
EOF
"${as_pg[@]}" "$PGBOUNCER" "$SCRATCH/pgbouncer.ini" >"$SCRATCH/pgbouncer.stdout" 2>&1 &
PGB_PID=$!; PIDS+=("$PGB_PID")

cat >"$SCRATCH/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_ADMIN }
clusters: [ { name: db, endpoints: ["127.0.0.1:$P_DB"] } ]
listeners:
  - { name: db_in, address: 127.0.0.1:$P_SL, protocol: $SLUICE_PROTOCOL, cluster: db }
EOF
"$SLUICE" -c "$SCRATCH/sluice.yaml" --workers 1 --log-format json >"$SCRATCH/sluice.log" 2>&1 &
SL_PID=$!; PIDS+=("$SL_PID")
wait_port "$P_HA"; wait_port "$P_PGB"; wait_port "$P_SL"

log "initialising pgbench at scale $SCALE"
"$PG_BIN/pgbench" -i -s "$SCALE" -q -h 127.0.0.1 -p "$P_DB" -U bench bench >/dev/null 2>&1
for target in haproxy pgbouncer sluice; do
    port=$(case $target in haproxy) echo "$P_HA" ;; pgbouncer) echo "$P_PGB" ;; sluice) echo "$P_SL" ;; esac)
    [[ $(psql -X -A -t -h 127.0.0.1 -p "$port" -U bench -d bench -c 'SELECT 6 * 7') == 42 ]] ||
        die "psql through $target failed"
done

declare -A PORT=([direct]=$P_DB [haproxy]=$P_HA [pgbouncer]=$P_PGB [sluice]=$P_SL)
declare -A PID=([haproxy]=$HA_PID [pgbouncer]=$PGB_PID [sluice]=$SL_PID)
TARGETS=(direct haproxy pgbouncer sluice)
# test name, pgbench arguments, statements per transaction
TESTS=("select-only prepared|-S -M prepared|1" "select-only simple|-S -M simple|1" "tpc-b prepared|-M prepared|7")
hz=$(getconf CLK_TCK)
sluice_statements=0
sluice_runs=0
printf 'test\tround\ttarget\ttps\tstatements\tproxy_cpu_us_per_statement\n' >"$SCRATCH/raw.tsv"
for round in $(seq "$ROUNDS"); do
    for t in "${TESTS[@]}"; do
        IFS='|' read -r test args per_tx <<<"$t"
        read -r -a pgbench_args <<<"$args"
        # The same order rotated by the round: each target takes each position in turn.
        for i in "${!TARGETS[@]}"; do
            target=${TARGETS[$(((i + round - 1) % ${#TARGETS[@]}))]}
            if [[ $test == tpc-b* ]]; then
                # What pgbench does before a run, done here directly so no proxy pays for it.
                su_psql -d bench -c 'VACUUM pgbench_branches' -c 'VACUUM pgbench_tellers' \
                    -c 'TRUNCATE pgbench_history'
            fi
            pid=${PID[$target]:-}
            before=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            out=$("$PG_BIN/pgbench" -h 127.0.0.1 -p "${PORT[$target]}" -U bench -n -c "$CLIENTS" -j "$THREADS" \
                -T "$DURATION" "${pgbench_args[@]}" bench 2>"$SCRATCH/pgbench.err") ||
                die "pgbench $args through $target: $(cat "$SCRATCH/pgbench.err")"
            after=$([[ -n $pid ]] && ticks "$pid" || echo 0)
            tps=$(awk '/^tps = / { print $3; exit }' <<<"$out")
            tx=$(awk -F': ' '/number of transactions actually processed/ { print $2 }' <<<"$out")
            statements=$((tx * per_tx))
            cpu=$(awk -v d="$((after - before))" -v hz="$hz" -v q="$statements" \
                'BEGIN { if (q > 0 && d > 0) printf "%.2f", d / hz * 1e6 / q; else print "-" }')
            if [[ $target == sluice ]]; then
                sluice_statements=$((sluice_statements + statements))
                sluice_runs=$((sluice_runs + 1))
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$test" "$round" "$target" "$tps" "$statements" "$cpu" \
                | tee -a "$SCRATCH/raw.tsv" >&2
        done
    done
done

# Sluice's own count of what it saw, as a check that it parsed everything: pgbench's
# statements, plus the two it runs per connection-less start (scale, partitions) and the
# psql check.
metrics=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$P_ADMIN/metrics').read().decode())")
seen=$(awk '/^sluice_ops_total\{/ && /listener="db_in"/ && /outcome="ok"/ { s += $NF } END { printf "%d", s }' <<<"$metrics")
errors=$(awk '/^sluice_ops_total\{/ && /listener="db_in"/ && /outcome="error"/ { s += $NF } END { printf "%d", s }' <<<"$metrics")

echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $3 }'), $("$HAPROXY" -v | head -1 | awk '{ print "HAProxy", $3 }'), $("$PGBOUNCER" --version | head -1), sluice $(git -C "$ROOT" rev-parse --short HEAD) (protocol: $SLUICE_PROTOCOL)"
echo "pgbench -c $CLIENTS -j $THREADS -T $DURATION, scale $SCALE, $ROUNDS round(s), medians; each proxy on one thread"
echo
python3 - "$SCRATCH/raw.tsv" <<'EOF'
import collections, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = collections.defaultdict(list)
for test, rnd, target, tps, statements, cpu in rows:
    by[(test, target)].append((float(tps), None if cpu == "-" else float(cpu)))
def med(test, target, i):
    values = [r[i] for r in by[(test, target)] if r[i] is not None]
    return statistics.median(values) if values else float("nan")
def spread(test):
    worst = 0.0
    for target in ("direct", "haproxy", "pgbouncer", "sluice"):
        tps = [r[0] for r in by[(test, target)]]
        worst = max(worst, (max(tps) - min(tps)) / statistics.median(tps))
    return worst
print("| test | direct tps | HAProxy tps | pgbouncer tps | sluice tps | tps sluice/HAProxy | tps sluice/pgbouncer "
      "| µs CPU/stmt HAProxy | µs CPU/stmt pgbouncer | µs CPU/stmt sluice | CPU sluice/HAProxy | CPU sluice/pgbouncer | spread |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for test in dict.fromkeys(t for t, _ in by):
    d, h, p, s = (med(test, t, 0) for t in ("direct", "haproxy", "pgbouncer", "sluice"))
    hc, pc, sc = (med(test, t, 1) for t in ("haproxy", "pgbouncer", "sluice"))
    print(f"| {test} | {d:.0f} | {h:.0f} | {p:.0f} | {s:.0f} | {s/h:.3f} | {s/p:.3f} "
          f"| {hc:.2f} | {pc:.2f} | {sc:.2f} | {sc/hc:.2f} | {sc/pc:.2f} | {spread(test):.0%} |")
EOF
echo
if [[ $SLUICE_PROTOCOL == postgres ]]; then
    expected=$((sluice_statements + 2 * sluice_runs + 1))
    echo "sluice counted $seen statements ok and $errors with errors; pgbench ran $sluice_statements through it (+ $((2 * sluice_runs + 1)) setup statements: $expected)"
    # pgbench -T stops clients mid-transaction: the last, unfinished transaction of each
    # client is not in its report but its statements ran.
    ((seen >= expected && errors == 0)) || die "sluice's op counts do not match pgbench's"
fi

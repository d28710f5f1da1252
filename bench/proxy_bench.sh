#!/usr/bin/env bash
# Side-by-side TCP proxy benchmark: sluice vs HAProxy (mode tcp) vs nginx stream, each
# pinned to one worker (sluice --workers 1, HAProxy nbthread 1, nginx worker_processes 1),
# all in front of the same upstreams on free high loopback ports, in one run; plus sluice's
# `redis` listener against those and twemproxy (section 6).
#
# Sections (SECTIONS picks them, in this order):
#   1. tcp: redis-benchmark -t set / -t get, -c 50, at -P 1 and -P 16, against redis
#      directly and through each proxy; requests/s and proxy CPU per request (utime+stime
#      of the proxy process from /proc/PID/stat; nginx: the worker, not the master).
#   2. bulk: BULK_BYTES over one connection, client -> upstream and upstream ->
#      client (bench/bulk_client.py, bench/bulk_upstream.py); MiB/s and proxy CPU per GiB.
#   3. idle: IDLE_CONNS idle connections through each proxy to redis-server
#      (bench/idle_conns.py); proxy VmRSS growth per connection.
#   4. strace: strace -c -f on each proxy during a short SET run: syscalls per request.
#   5. perf: perf stat (syscall tracepoints, context switches) on each proxy during a full-size
#      SET run: syscalls per request without strace's slowdown (skipped without perf).
#   6. redis: the issue's comparison for the `redis` listener, which parses every command
#      and keeps per-command stats (always on): redis-benchmark -t set / -t get, -c 50, at
#      -P 1 and -P 16, against redis directly, HAProxy, nginx stream, twemproxy (nutcracker,
#      single-threaded, one server connection), sluice `tcp` and sluice `redis` (a second
#      listener of the same sluice process; only one listener is driven at a time, so the
#      process's CPU delta is that listener's). Requests/s, proxy CPU per request, ratios;
#      target: sluice `redis` at or below nginx stream's CPU per request at -P 16. Then the
#      listener's own view: sluice_ops_total{op="SET"|"GET",outcome="ok"} from the admin
#      /metrics against the number of commands redis-benchmark sent (should be equal).
# Runs are interleaved (target order rotates every run) and repeated ROUNDS times; the
# tables report medians and ratios. The summary goes to stdout and bench/results/.
#
# Usage: bench/proxy_bench.sh            (full run, ~20-25 min on 2 cores)
#        QUICK=1 bench/proxy_bench.sh    (smoke run, ~4 min, most of it the perf section)
#        SECTIONS=redis bench/proxy_bench.sh   (only the redis-listener comparison)
# Knobs (env): ROUNDS, BULK_ROUNDS (default max(ROUNDS, 5): bulk runs are short and noisy), N_P1, N_P16, CLIENTS, BULK_BYTES, IDLE_CONNS, STRACE (0/1), PERF (0/1),
#              STRACE_N_P1, STRACE_N_P16, KEEP (1 = keep the scratch dir), SLUICE (binary),
#              WAIT_QUIET=SECONDS (wait up to that long for other load < 0.25 cores first),
#              SECTIONS (comma-separated subset of tcp,bulk,idle,strace,perf,redis; default
#              all; a subset's summary is named DATE-<sections>[-quick].md).
# Every redis run logs the "other load": machine busy time not spent in client, redis or
# proxy. Anything well above ~0.05 cores means something else ran; treat that run as noise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    : "${ROUNDS:=1}" "${N_P1:=20000}" "${N_P16:=100000}" "${BULK_BYTES:=$((128 << 20))}"
    : "${IDLE_CONNS:=1000}" "${STRACE_N_P1:=5000}" "${STRACE_N_P16:=20000}"
else
    : "${ROUNDS:=3}" "${N_P1:=300000}" "${N_P16:=3000000}" "${BULK_BYTES:=$((4 << 30))}"
    : "${IDLE_CONNS:=10000}" "${STRACE_N_P1:=20000}" "${STRACE_N_P16:=200000}"
fi
: "${BULK_ROUNDS:=$((ROUNDS < 5 && QUICK != 1 ? 5 : ROUNDS))}"
: "${CLIENTS:=50}" "${STRACE:=1}" "${PERF:=1}" "${KEEP:=0}" "${WAIT_QUIET:=0}"
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
PROXIES=(haproxy nginx sluice)
# Section 6's targets: sluice = the tcp listener, sluice-redis = the redis listener.
REDIS_TARGETS=(direct haproxy nginx twemproxy sluice sluice-redis)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ALL_SECTIONS=(tcp bulk idle strace perf redis)
: "${SECTIONS:=$(IFS=,; echo "${ALL_SECTIONS[*]}")}"
declare -A ON=()
IFS=, read -r -a _sections <<<"$SECTIONS"
for s in "${_sections[@]}"; do
    [[ " ${ALL_SECTIONS[*]} " == *" $s "* ]] || die "SECTIONS: unknown section '$s' (known: ${ALL_SECTIONS[*]})"
    ON[$s]=1
done
((${#ON[@]} > 0)) || die "SECTIONS is empty"
on() { [[ -n ${ON[$1]:-} ]]; }

# ---------------------------------------------------------------- peers and binary
need_install=0
for bin in redis-server redis-cli redis-benchmark haproxy nginx python3 ss; do
    command -v "$bin" >/dev/null || need_install=1
done
# twemproxy (Debian: nutcracker) is only a peer in the redis section.
on redis && ! command -v nutcracker >/dev/null && need_install=1
stream_so=""
nginx_stream_ok() {
    local v
    v=$(nginx -V 2>&1) || return 1
    if grep -q -- '--with-stream=dynamic' <<<"$v"; then
        for d in /usr/lib/nginx/modules /usr/share/nginx/modules /usr/lib64/nginx/modules; do
            [[ -f $d/ngx_stream_module.so ]] && { stream_so=$d/ngx_stream_module.so; return 0; }
        done
        return 1
    fi
    grep -q -- '--with-stream\b' <<<"$v"
}
command -v nginx >/dev/null && ! nginx_stream_ok && need_install=1
if [[ $need_install == 1 ]]; then
    [[ $(id -u) == 0 ]] || die "missing peers; as root: apt-get install -y --no-install-recommends redis-server redis-tools haproxy nginx-light libnginx-mod-stream nutcracker"
    pkgs=(redis-server redis-tools haproxy nginx-light libnginx-mod-stream iproute2)
    on redis && pkgs+=(nutcracker)
    log "installing peers: ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${pkgs[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; }
    nginx_stream_ok || die "nginx has no stream module (nginx -V)"
    on redis && { command -v nutcracker >/dev/null || die "no nutcracker binary after installing nutcracker"; }
fi

if [[ $SLUICE == "$ROOT/target/release/sluice" ]]; then
    if [[ ! -x $SLUICE ]] || [[ -n $(cd "$ROOT" && find src filters codecs Cargo.toml Cargo.lock \
            -newer "$SLUICE" -type f -print -quit 2>/dev/null) ]]; then
        log "building sluice (cargo build --release)"
        (cd "$ROOT" && cargo build --release >&2)
    fi
fi
[[ -x $SLUICE ]] || die "no sluice binary at $SLUICE"

# ---------------------------------------------------------------- scratch, limits, ports
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench.XXXXXX")
declare -a PIDS=()
cleanup() {
    local rc=$?
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 || $rc != 0 ]]; then log "scratch kept: $SCRATCH"; else rm -rf "$SCRATCH"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10k idle connections need ~20k descriptors in the proxy. Without CAP_SYS_RESOURCE the
# hard limit cannot be raised; then fit the connection count to it.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
NOFILE=$(ulimit -n)
max_idle=$(( (NOFILE - 200) / 2 / 100 * 100 ))
if ((IDLE_CONNS > max_idle)); then
    log "open-file limit is $NOFILE (hard limit; cannot raise): idle test uses $max_idle connections, not $IDLE_CONNS"
    IDLE_CONNS=$max_idle
fi

# Twelve consecutive free ports between 20000 and 31999 (below the ephemeral range).
read -r P_REDIS P_BULK P_HA P_HA_BULK P_NG P_NG_BULK P_SL P_SL_BULK P_SL_ADMIN \
    P_SL_REDIS P_TW P_TW_STATS < <(python3 - <<'EOF'
import random, socket
for _ in range(200):
    base = random.randrange(20000, 31988)
    socks = []
    try:
        for p in range(base, base + 12):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(*range(base, base + 12)); break
EOF
)
[[ -n ${P_TW_STATS:-} ]] || die "no free ports"

ticks() { # utime+stime of a process (all threads), in clock ticks
    local s
    s=$(<"/proc/$1/stat")
    s=${s##*) }
    read -r -a f <<<"$s"
    echo $((f[11] + f[12]))
}
sys_busy() { # busy CPU ticks of the whole machine (all cores), from /proc/stat
    local cpu user nice system idle iowait irq softirq steal rest
    read -r cpu user nice system idle iowait irq softirq steal rest </proc/stat
    echo $((user + nice + system + irq + softirq + steal))
}
wait_port() {
    for _ in $(seq 100); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    die "nothing listens on port $1 (see $SCRATCH)"
}

background_load() { # busy cores over 3 s, before anything of ours runs
    local a b
    a=$(sys_busy); sleep 3; b=$(sys_busy)
    awk -v d="$((b - a))" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", d / hz / 3 }'
}
load=$(background_load)
if ((WAIT_QUIET > 0)); then
    deadline=$((SECONDS + WAIT_QUIET))
    while awk -v l="$load" 'BEGIN { exit !(l >= 0.25) }' && ((SECONDS < deadline)); do
        log "background load $load cores: waiting for a quiet machine"
        sleep 10
        load=$(background_load)
    done
fi
log "background load before start: $load cores"

# ---------------------------------------------------------------- start upstreams
log "scratch $SCRATCH; sections $SECTIONS; ports redis=$P_REDIS bulk=$P_BULK haproxy=$P_HA/$P_HA_BULK nginx=$P_NG/$P_NG_BULK sluice=$P_SL/$P_SL_BULK$(on redis && echo " sluice-redis=$P_SL_REDIS twemproxy=$P_TW") sluice-admin=$P_SL_ADMIN"
redis-server --port "$P_REDIS" --bind 127.0.0.1 --save '' --appendonly no --dir "$SCRATCH" \
    --maxclients $((NOFILE - 100)) --logfile "$SCRATCH/redis.log" --daemonize no &
REDIS_PID=$!; PIDS+=("$REDIS_PID")
python3 "$BENCH/bulk_upstream.py" 127.0.0.1 "$P_BULK" 2>"$SCRATCH/bulk_upstream.log" &
BULK_PID=$!; PIDS+=("$BULK_PID")
wait_port "$P_REDIS"; wait_port "$P_BULK"
redis-cli -p "$P_REDIS" ping >/dev/null

# ---------------------------------------------------------------- start proxies
cat >"$SCRATCH/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn $(( (NOFILE - 100) / 2 ))
defaults
    mode tcp
    maxconn $(( (NOFILE - 100) / 2 ))
    timeout connect 5s
    timeout client 1h
    timeout server 1h
listen redis
    bind 127.0.0.1:$P_HA
    server redis 127.0.0.1:$P_REDIS
listen bulk
    bind 127.0.0.1:$P_HA_BULK
    server bulk 127.0.0.1:$P_BULK
EOF
haproxy -c -q -f "$SCRATCH/haproxy.cfg" >&2
haproxy -db -f "$SCRATCH/haproxy.cfg" >"$SCRATCH/haproxy.log" 2>&1 &
HA_PID=$!; PIDS+=("$HA_PID")

mkdir -p "$SCRATCH/nginx/logs"
{
    [[ -n $stream_so ]] && echo "load_module $stream_so;"
    cat <<EOF
worker_processes 1;
daemon off;
pid $SCRATCH/nginx/nginx.pid;
error_log $SCRATCH/nginx/logs/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $((NOFILE - 100)); }
stream {
    # Half-close (FIN passed on, other direction kept open) is off by default in nginx;
    # the bulk upload test needs it, and HAProxy and sluice do it out of the box.
    proxy_half_close on;
    server { listen 127.0.0.1:$P_NG;      proxy_pass 127.0.0.1:$P_REDIS; proxy_timeout 1h; }
    server { listen 127.0.0.1:$P_NG_BULK; proxy_pass 127.0.0.1:$P_BULK;  proxy_timeout 1h; }
}
EOF
} >"$SCRATCH/nginx/nginx.conf"
nginx -t -q -p "$SCRATCH/nginx/" -e "$SCRATCH/nginx/logs/error.log" -c "$SCRATCH/nginx/nginx.conf" >&2
nginx -p "$SCRATCH/nginx/" -e "$SCRATCH/nginx/logs/error.log" -c "$SCRATCH/nginx/nginx.conf" \
    >"$SCRATCH/nginx/stdout.log" 2>&1 &
NG_MASTER=$!; PIDS+=("$NG_MASTER")

cat >"$SCRATCH/sluice.yaml" <<EOF
admin: { address: 127.0.0.1:$P_SL_ADMIN }
drain_timeout: 1s
clusters:
  - name: cache
    endpoints: ["127.0.0.1:$P_REDIS"]
  - name: bulk
    endpoints: ["127.0.0.1:$P_BULK"]
listeners:
  - name: cache_in
    address: 127.0.0.1:$P_SL
    protocol: tcp
    cluster: cache
    max_connections: $((NOFILE - 100))
  - name: bulk_in
    address: 127.0.0.1:$P_SL_BULK
    protocol: tcp
    cluster: bulk
EOF
# The redis listener shares the process (and its one worker) with the tcp ones: same
# upstream, same limits; stats are always on for protocol listeners.
SL_REDIS_LISTENER=cache_redis
on redis && cat >>"$SCRATCH/sluice.yaml" <<EOF
  - name: $SL_REDIS_LISTENER
    address: 127.0.0.1:$P_SL_REDIS
    protocol: redis
    cluster: cache
    max_connections: $((NOFILE - 100))
EOF
RUST_LOG=warn "$SLUICE" --config "$SCRATCH/sluice.yaml" --workers 1 >"$SCRATCH/sluice.log" 2>&1 &
SL_PID=$!; PIDS+=("$SL_PID")

# twemproxy: one pool, one server, one server connection (its model: every client's
# commands are pipelined onto it). It has a second thread that aggregates stats every
# stats interval (-i, default 30 s); /proc/PID/stat counts both threads, as for sluice.
if on redis; then
    cat >"$SCRATCH/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$P_TW
  redis: true
  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: false
  server_connections: 1
  servers:
    - 127.0.0.1:$P_REDIS:1
EOF
    nutcracker -t -c "$SCRATCH/nutcracker.yml" >&2
    # Foreground (no -d) so that $! is its pid; single-threaded event loop.
    nutcracker -c "$SCRATCH/nutcracker.yml" -s "$P_TW_STATS" -a 127.0.0.1 -o "$SCRATCH/nutcracker.log" \
        -p "$SCRATCH/nutcracker.pid" >"$SCRATCH/nutcracker.stdout" 2>&1 &
    TW_PID=$!; PIDS+=("$TW_PID")
fi

for p in "$P_HA" "$P_HA_BULK" "$P_NG" "$P_NG_BULK" "$P_SL" "$P_SL_BULK"; do wait_port "$p"; done
on redis && for p in "$P_SL_REDIS" "$P_TW"; do wait_port "$p"; done
NG_PID=$(pgrep -P "$NG_MASTER" | head -1)
[[ -n $NG_PID ]] || die "no nginx worker under master $NG_MASTER"
[[ $(pgrep -P "$NG_MASTER" | wc -l) == 1 ]] || die "expected exactly one nginx worker"

declare -A PID_OF=([haproxy]=$HA_PID [nginx]=$NG_PID [sluice]=$SL_PID)
declare -A PORT_OF=([direct]=$P_REDIS [haproxy]=$P_HA [nginx]=$P_NG [sluice]=$P_SL)
declare -A BULK_PORT_OF=([direct]=$P_BULK [haproxy]=$P_HA_BULK [nginx]=$P_NG_BULK [sluice]=$P_SL_BULK)
if on redis; then
    PID_OF[twemproxy]=$TW_PID; PID_OF[sluice-redis]=$SL_PID
    PORT_OF[twemproxy]=$P_TW; PORT_OF[sluice-redis]=$P_SL_REDIS
fi
# A PING through each target first: redis-benchmark retries a refused connection forever,
# busy, instead of failing.
for t in direct "${PROXIES[@]}" $(on redis && echo twemproxy sluice-redis); do
    [[ $(timeout 10 redis-cli -p "${PORT_OF[$t]}" ping) == PONG ]] || die "PING through $t failed"
done

# ---------------------------------------------------------------- metadata
RAW=$SCRATCH/raw.tsv
HZ=$(getconf CLK_TCK)
DATE=$(date +%F)
sluice_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$ROOT" status --porcelain -- src filters codecs Cargo.toml Cargo.lock 2>/dev/null) ]] &&
    sluice_rev="$sluice_rev (+ uncommitted changes)"
meta() { printf 'meta\t%s\t%s\n' "$1" "$2" >>"$RAW"; }
meta date "$(date '+%F %H:%M %Z')"
meta machine "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB, Linux $(uname -r)"
meta rounds "$ROUNDS"
meta bulk_rounds "$BULK_ROUNDS"
meta background_load "$load"
meta clk_tck "$HZ"
meta n_p1 "$N_P1"
meta n_p16 "$N_P16"
meta bulk_bytes "$BULK_BYTES"
meta haproxy "$(haproxy -v | head -1)"
meta nginx "$(nginx -v 2>&1)"
meta redis "$(redis-server -v)"
meta sluice "git $sluice_rev, binary sha256 $(sha256sum "$SLUICE" | cut -c1-12)"
meta python "$(python3 --version 2>&1)"
meta sections "$SECTIONS"
if on redis; then
    meta twemproxy "$(nutcracker -V 2>&1 | head -1 | sed "s/^This is //")"
    meta redis_listener "$SL_REDIS_LISTENER"
fi

rotate() { # rotate <k> <items...>: the items starting at index k mod n
    local k=$1; shift
    local -a a=("$@")
    local n=${#a[@]}
    for ((i = 0; i < n; i++)); do echo "${a[(i + k) % n]}"; done
}

# ---------------------------------------------------------------- 1. redis-benchmark
# A run is redone (up to 3 more times) when something outside the benchmark used more
# than MAX_OTHER cores during it and WAIT_QUIET > 0; the retry first waits for quiet.
: "${MAX_OTHER:=0.3}"
noisy() { # noisy <other-load>: whether to redo the run
    ((WAIT_QUIET > 0)) && awk -v o="$1" -v m="$MAX_OTHER" 'BEGIN { exit !(o > m) }'
}
wait_quiet() {
    local deadline=$((SECONDS + WAIT_QUIET)) l
    l=$(background_load)
    while awk -v l="$l" 'BEGIN { exit !(l >= 0.25) }' && ((SECONDS < deadline)); do
        log "    background load $l cores: waiting"
        sleep 10
        l=$(background_load)
    done
}

# Commands each redis-benchmark run sent through the sluice redis listener, counted per
# attempt (a discarded run still went through it), for the sluice_ops_total check.
declare -A SENT_VIA_REDIS=([set]=0 [get]=0)
run_redis() { # round target test pipeline requests [kind: redis (section 1) | redisproto (6)]
    local round=$1 t=$2 test=$3 pipe=$4 n=$5 kind=${6:-redis} p0 p1 r0 r1 s0 s1 t0 t1 rps cpu wall other per attempt
    for attempt in 1 2 3 4; do
        p0=-; [[ $t != direct ]] && p0=$(ticks "${PID_OF[$t]}")
        r0=$(ticks "$REDIS_PID")
        s0=$(sys_busy)
        t0=$(date +%s%N)
        TIMEFORMAT='%3U %3S'
        { time redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t "$test" -n "$n" -c "$CLIENTS" \
            -P "$pipe" --csv >"$SCRATCH/rb.out" 2>"$SCRATCH/rb.err"; } 2>"$SCRATCH/rb.time"
        t1=$(date +%s%N)
        s1=$(sys_busy)
        r1=$(ticks "$REDIS_PID")
        p1=-; [[ $t != direct ]] && p1=$(( $(ticks "${PID_OF[$t]}") - p0 ))
        [[ $t == sluice-redis ]] && SENT_VIA_REDIS[$test]=$((SENT_VIA_REDIS[$test] + n))
        rps=$(awk -F'"' -v name="${test^^}" '$2 == name { print $4 }' "$SCRATCH/rb.out")
        [[ -n $rps ]] || die "redis-benchmark via $t: no result ($(cat "$SCRATCH/rb.err" "$SCRATCH/rb.out"))"
        cpu=$(awk '{ print $1 + $2 }' "$SCRATCH/rb.time")
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        other=$(awk -v s="$((s1 - s0))" -v r="$((r1 - r0))" -v p="${p1/-/0}" -v c="$cpu" -v hz="$HZ" -v w="$wall" \
            'BEGIN { printf "%.2f", ((s - r - p) / hz - c) / w }')
        per="-"
        [[ $p1 != - ]] && per=$(awk -v c="$p1" -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.2f", c / hz * 1e6 / n }')
        log "  $test P$pipe $t: $rps rps, proxy ${per} us/req, wall ${wall}s, other load ${other} cores"
        if ((attempt < 4)) && noisy "$other"; then
            log "    discarded: other load $other > $MAX_OTHER cores"
            wait_quiet
            continue
        fi
        break
    done
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$round" "$t" "$test" "$pipe" "$n" \
        "$rps" "$wall" "$p1" "$((r1 - r0))" "$cpu" "$((s1 - s0))" >>"$RAW"
}

run_bulk() { # round target direction
    local round=$1 t=$2 dir=$3 p0 p1 u0 u1 s0 s1 moved secs cpu other attempt
    for attempt in 1 2 3 4; do
        p0=-; [[ $t != direct ]] && p0=$(ticks "${PID_OF[$t]}")
        u0=$(ticks "$BULK_PID")
        s0=$(sys_busy)
        TIMEFORMAT='%3U %3S'
        { time python3 "$BENCH/bulk_client.py" 127.0.0.1 "${BULK_PORT_OF[$t]}" "$dir" "$BULK_BYTES" \
            >"$SCRATCH/bulk.out"; } 2>"$SCRATCH/bulk.time"
        s1=$(sys_busy)
        u1=$(ticks "$BULK_PID")
        p1=-; [[ $t != direct ]] && p1=$(( $(ticks "${PID_OF[$t]}") - p0 ))
        read -r moved secs <"$SCRATCH/bulk.out"
        cpu=$(awk '{ print $1 + $2 }' "$SCRATCH/bulk.time")
        other=$(awk -v s="$((s1 - s0))" -v u="$((u1 - u0))" -v p="${p1/-/0}" -v c="$cpu" -v hz="$HZ" -v w="$secs" \
            'BEGIN { printf "%.2f", ((s - u - p) / hz - c) / w }')
        log "  $dir $t: $(awk -v b="$moved" -v s="$secs" 'BEGIN { printf "%.0f", b / s / 1048576 }') MiB/s, proxy ticks $p1, other load $other cores"
        if ((attempt < 4)) && noisy "$other"; then
            log "    discarded: other load $other > $MAX_OTHER cores"
            wait_quiet
            continue
        fi
        break
    done
    printf 'bulk\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$t" "$dir" "$moved" "$secs" "$p1" >>"$RAW"
}

if on tcp; then
    log "warm-up"
    for t in direct "${PROXIES[@]}"; do
        redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t set,get -n 20000 -c "$CLIENTS" -P 16 -q >/dev/null 2>&1
    done

    configs=("set 1" "get 1" "set 16" "get 16")
    for ((round = 1; round <= ROUNDS; round++)); do
        log "redis round $round/$ROUNDS"
        ci=0
        for cfg in "${configs[@]}"; do
            read -r test pipe <<<"$cfg"
            n=$N_P1; [[ $pipe == 16 ]] && n=$N_P16
            for t in $(rotate $((round + ci)) direct "${PROXIES[@]}"); do
                run_redis "$round" "$t" "$test" "$pipe" "$n"
            done
            ci=$((ci + 1))
        done
    done
fi

# ---------------------------------------------------------------- 2. bulk transfer
if on bulk; then
    log "bulk warm-up"
    for t in direct "${PROXIES[@]}"; do
        python3 "$BENCH/bulk_client.py" 127.0.0.1 "${BULK_PORT_OF[$t]}" up $((16 << 20)) >/dev/null
        python3 "$BENCH/bulk_client.py" 127.0.0.1 "${BULK_PORT_OF[$t]}" down $((16 << 20)) >/dev/null
    done
    for ((round = 1; round <= BULK_ROUNDS; round++)); do
        log "bulk round $round/$BULK_ROUNDS"
        di=0
        for dir in up down; do
            for t in $(rotate $((round + di)) direct "${PROXIES[@]}"); do
                run_bulk "$round" "$t" "$dir"
            done
            di=$((di + 1))
        done
    done
fi

# ---------------------------------------------------------------- 3. idle connections
if on idle; then
    for t in "${PROXIES[@]}"; do
        log "idle: $IDLE_CONNS connections through $t"
        line=$(python3 "$BENCH/idle_conns.py" --port "${PORT_OF[$t]}" --upstream-port "$P_REDIS" \
            --pid "${PID_OF[$t]}" --count "$IDLE_CONNS")
        read -r count before after per <<<"$line"
        printf 'idle\t%s\t%s\t%s\t%s\t%s\n' "$t" "$count" "$before" "$after" "$per" >>"$RAW"
        log "  $t: VmRSS $before -> $after KiB, $per bytes/connection"
    done
fi

# ---------------------------------------------------------------- 4. syscalls per request
if on strace && [[ $STRACE == 1 ]] && command -v strace >/dev/null; then
    for pipe in 1 16; do
        n=$STRACE_N_P1; [[ $pipe == 16 ]] && n=$STRACE_N_P16
        for t in "${PROXIES[@]}"; do
            out=$SCRATCH/strace-$t-$pipe.txt
            strace -c -f -p "${PID_OF[$t]}" -o "$out" 2>/dev/null &
            st=$!
            sleep 1
            redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t set -n "$n" -c "$CLIENTS" -P "$pipe" -q >/dev/null 2>&1
            sleep 0.5
            kill -INT "$st"; wait "$st" || true
            # Rows: % time, seconds, usecs/call, calls, [errors], syscall.
            awk -v t="$t" -v p="$pipe" -v n="$n" '
                $1 ~ /^[0-9.]+$/ && NF >= 5 { printf "strace\t%s\t%s\t%s\t%s\t%s\n", t, p, n, $NF, $4 }' \
                "$out" >>"$RAW"
            log "  strace $t P$pipe: $(awk '$NF == "total" { print $4 }' "$out") syscalls for $n requests"
        done
    done
fi

# ---------------------------------------------------------------- 5. syscalls without strace
# strace stops the proxy on every syscall, which changes how much work each epoll_wait
# finds. perf's syscall tracepoints only count, so this shows the batching of a normal run.
if on perf && [[ $PERF == 1 ]] && command -v perf >/dev/null &&
        perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1; then
    events=raw_syscalls:sys_enter,context-switches,task-clock
    perf stat -e 'syscalls:sys_enter_*' -- true >/dev/null 2>&1 && events+=',syscalls:sys_enter_*'
    perf_csv() { # perf_csv KIND TARGET CASE UNITS FILE: raw lines from perf stat -x, output
        awk -F, -v k="$1" -v t="$2" -v c="$3" -v n="$4" '
            $1 ~ /^[0-9.]+$/ && $1 > 0 { ev = $3; sub(/^syscalls:sys_enter_/, "", ev); sub(/^raw_syscalls:sys_enter$/, "total", ev)
                                         printf "%s\t%s\t%s\t%s\t%s\t%s\n", k, t, c, n, ev, $1 }' "$5" >>"$RAW"
    }
    for pipe in 1 16; do
        n=$N_P1; [[ $pipe == 16 ]] && n=$N_P16
        for t in "${PROXIES[@]}"; do
            out=$SCRATCH/perf-$t-$pipe.csv
            perf stat -x, -e "$events" -p "${PID_OF[$t]}" -o "$out" &
            ps_pid=$!
            sleep 0.5
            redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t set -n "$n" -c "$CLIENTS" -P "$pipe" -q >/dev/null 2>&1
            kill -INT "$ps_pid"; wait "$ps_pid" || true
            perf_csv perf "$t" "$pipe" "$n" "$out"
            log "  perf $t P$pipe: $(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$out") syscalls for $n requests"
        done
    done
    for dir in up down; do
        for t in "${PROXIES[@]}"; do
            out=$SCRATCH/perf-$t-bulk-$dir.csv
            perf stat -x, -e "$events" -p "${PID_OF[$t]}" -o "$out" &
            ps_pid=$!
            sleep 0.5
            python3 "$BENCH/bulk_client.py" 127.0.0.1 "${BULK_PORT_OF[$t]}" "$dir" "$BULK_BYTES" >/dev/null
            kill -INT "$ps_pid"; wait "$ps_pid" || true
            perf_csv perfbulk "$t" "$dir" "$BULK_BYTES" "$out"
            log "  perf $t bulk $dir: $(awk -F, '$3 == "raw_syscalls:sys_enter" { print $1 }' "$out") syscalls for $BULK_BYTES bytes"
        done
    done
fi

# ---------------------------------------------------------------- 6. the redis listener
# The issue's comparison: sluice `redis` (parses every command and reply, per-command
# stats) against byte pumps (HAProxy, nginx stream, sluice tcp) and a Redis-aware proxy
# (twemproxy), interleaved the same way as section 1 (target order rotates every run).
#
# redis-benchmark (7.x) sends CONFIG GET save / appendonly before a run. twemproxy does not
# support CONFIG and closes that connection; redis-benchmark prints "WARNING: Could not
# fetch server CONFIG" and runs the test anyway, so plain -t set / -t get need no extra
# flags there (checked with redis-benchmark 7.0.15 and nutcracker 0.5.0).
sluice_ops() { # sluice_ops LISTENER OP: "<ok> <other outcomes>" from sluice_ops_total on /metrics
    python3 - "$P_SL_ADMIN" "$1" "$2" <<'EOF'
import re, sys, urllib.request
port, listener, op = sys.argv[1:]
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
ok = other = 0
for line in text.splitlines():
    m = re.match(r'sluice_ops_total\{(.*)\} (\S+)', line)
    if not m:
        continue
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
    if labels.get("listener") == listener and labels.get("op") == op:
        if labels.get("outcome") == "ok":
            ok += float(m.group(2))
        else:
            other += float(m.group(2))
print(int(ok), int(other))
EOF
}

if on redis; then
    log "redis-listener warm-up"
    for t in "${REDIS_TARGETS[@]}"; do
        redis-benchmark -h 127.0.0.1 -p "${PORT_OF[$t]}" -t set,get -n 20000 -c "$CLIENTS" -P 16 -q >/dev/null 2>&1
    done
    # Counters after the warm-up, so that the difference is the measured runs alone.
    declare -A OPS_BEFORE=()
    for op in SET GET; do OPS_BEFORE[$op]=$(sluice_ops "$SL_REDIS_LISTENER" "$op"); done

    configs=("set 1" "get 1" "set 16" "get 16")
    for ((round = 1; round <= ROUNDS; round++)); do
        log "redis-listener round $round/$ROUNDS"
        ci=0
        for cfg in "${configs[@]}"; do
            read -r test pipe <<<"$cfg"
            n=$N_P1; [[ $pipe == 16 ]] && n=$N_P16
            for t in $(rotate $((round + ci)) "${REDIS_TARGETS[@]}"); do
                run_redis "$round" "$t" "$test" "$pipe" "$n" redisproto
            done
            ci=$((ci + 1))
        done
    done

    # The listener's own count against what redis-benchmark sent: every command parsed,
    # paired with its reply and counted once.
    for op in SET GET; do
        read -r ok0 other0 <<<"${OPS_BEFORE[$op]}"
        read -r ok1 other1 <<<"$(sluice_ops "$SL_REDIS_LISTENER" "$op")"
        sent=${SENT_VIA_REDIS[${op,,}]}
        printf 'redisops\t%s\t%s\t%s\t%s\t%s\n' "$SL_REDIS_LISTENER" "$op" "$sent" "$((ok1 - ok0))" \
            "$((other1 - other0))" >>"$RAW"
        log "  sluice_ops_total{listener=$SL_REDIS_LISTENER,op=$op}: ok +$((ok1 - ok0)), other outcomes +$((other1 - other0)); redis-benchmark sent $sent"
        ((ok1 - ok0 == sent && other1 == other0)) ||
            log "  WARNING: the $op count does not match what redis-benchmark sent (see the summary)"
    done
fi

# ---------------------------------------------------------------- summary
mkdir -p "$BENCH/results"
# A subset of the sections gets its own file, so that it does not replace a full run's.
subset=""
((${#ON[@]} < ${#ALL_SECTIONS[@]})) &&
    subset=-$(for s in "${ALL_SECTIONS[@]}"; do if on "$s"; then echo "$s"; fi; done | paste -sd-)
suffix=""; [[ $QUICK == 1 ]] && suffix="-quick"
RESULT=$BENCH/results/$DATE$subset$suffix.md
cp "$RAW" "$BENCH/results/$DATE$subset$suffix.tsv"
{
    echo "# Proxy benchmark $DATE${suffix:+ (QUICK=1 smoke run)}"
    echo
    echo "Command: \`${suffix:+QUICK=1 }${subset:+SECTIONS=$SECTIONS }bench/proxy_bench.sh\` (ROUNDS=$ROUNDS BULK_ROUNDS=$BULK_ROUNDS N_P1=$N_P1 N_P16=$N_P16 CLIENTS=$CLIENTS BULK_BYTES=$BULK_BYTES IDLE_CONNS=$IDLE_CONNS)"
    echo
    awk -F'\t' '$1 == "meta" && $2 ~ /^(haproxy|nginx|twemproxy|redis|sluice|python)$/ { printf "- %s: %s\n", $2, $3 }' "$RAW"
    echo
    python3 "$BENCH/summarize.py" "$RAW"
} | tee "$RESULT"
log "summary written to $RESULT (raw: ${RESULT%.md}.tsv)"

#!/usr/bin/env bash
# Side-by-side HTTP/1.1 reverse-proxy benchmark: wrk and `h2load --h1` against nginx
# directly, through HAProxy (mode http, nbthread 1) and through sluice's `http` listener
# (--workers 1), all in front of the same nginx (worker_processes 1) on free loopback
# ports, in one run. Each proxy keeps its upstream connections alive (HAProxy
# `http-reuse always`, sluice's pool), so both measure proxying, not connecting.
#
# For each client (wrk -t2 -c$CONNS -d$DURATION; h2load --h1 -n$H2LOAD_N -c$CONNS) and each
# target (direct, haproxy, sluice), runs are interleaved (the target order rotates every
# round) and repeated ROUNDS times; the table reports the median requests/s, the proxy's
# CPU per request (utime+stime of the proxy process from /proc/PID/stat, over the run),
# and ratios: sluice/haproxy requests/s, sluice/haproxy CPU per request.
# Not run in CI. The summary goes to stdout and bench/results/DATE-http.md.
#
# Usage: bench/http_bench.sh              (ROUNDS=3, 10 s wrk runs: ~4 min)
#        QUICK=1 bench/http_bench.sh      (ROUNDS=1, 5 s runs)
# Knobs (env): ROUNDS, DURATION, CONNS, H2LOAD_N, PATH_ (request path, default /index.html),
#              SLUICE (binary, default target/release/sluice), KEEP (1 = keep the scratch dir)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then : "${ROUNDS:=1}" "${DURATION:=5s}" "${H2LOAD_N:=50000}"; else : "${ROUNDS:=3}" "${DURATION:=10s}" "${H2LOAD_N:=200000}"; fi
: "${CONNS:=32}" "${PATH_:=/index.html}" "${KEEP:=0}"
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
TARGETS=(direct haproxy sluice)

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
for bin in nginx haproxy wrk h2load curl; do command -v "$bin" >/dev/null || die "$bin missing (apt-get install nginx haproxy wrk nghttp2-client curl)"; done
[[ -x $SLUICE ]] || die "no $SLUICE: cargo build --release"

SCRATCH=$(mktemp -d /tmp/sluice-http-bench.XXXX)
chmod 755 "$SCRATCH"   # nginx workers run as nobody when started as root
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; [[ $KEEP == 1 ]] || rm -rf "$SCRATCH"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; die "port $1 did not open"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

NGINX_PORT=$(free_port); HAPROXY_PORT=$(free_port); SLUICE_PORT=$(free_port); ADMIN_PORT=$(free_port)
mkdir -p "$SCRATCH"/{html,logs,tmp}
echo "hello from nginx" > "$SCRATCH/html/index.html"
cat > "$SCRATCH/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $SCRATCH/nginx.pid; error_log $SCRATCH/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  client_body_temp_path $SCRATCH/tmp; proxy_temp_path $SCRATCH/tmp; fastcgi_temp_path $SCRATCH/tmp; uwsgi_temp_path $SCRATCH/tmp; scgi_temp_path $SCRATCH/tmp;
  server { listen 127.0.0.1:$NGINX_PORT reuseport; root $SCRATCH/html; } }
CONF
nginx -p "$SCRATCH" -c "$SCRATCH/nginx.conf" & PIDS+=($!)
cat > "$SCRATCH/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend be
backend be
  server n1 127.0.0.1:$NGINX_PORT
CONF
haproxy -f "$SCRATCH/haproxy.cfg" & PIDS+=($!)
cat > "$SCRATCH/sluice.yaml" <<CONF
admin: { address: 127.0.0.1:$ADMIN_PORT }
clusters: [{ name: nginx, endpoints: ["127.0.0.1:$NGINX_PORT"] }]
listeners: [{ name: web, address: 127.0.0.1:$SLUICE_PORT, protocol: http, cluster: nginx }]
CONF
"$SLUICE" --config "$SCRATCH/sluice.yaml" --workers 1 >"$SCRATCH/sluice.log" 2>&1 & PIDS+=($!)
SLUICE_PID=$!
HAPROXY_PID=${PIDS[1]}
for p in $NGINX_PORT $HAPROXY_PORT $SLUICE_PORT; do wait_port "$p"; done
for p in $NGINX_PORT $HAPROXY_PORT $SLUICE_PORT; do curl -sf "http://127.0.0.1:$p$PATH_" >/dev/null || die "GET through :$p failed"; done

port_of() { case $1 in direct) echo "$NGINX_PORT";; haproxy) echo "$HAPROXY_PORT";; sluice) echo "$SLUICE_PORT";; esac; }
pid_of() { case $1 in haproxy) echo "$HAPROXY_PID";; sluice) echo "$SLUICE_PID";; *) echo "";; esac; }

# One run: prints "rps cpu_us_per_request".
run() {
    local client=$1 target=$2 port pid before after rps out
    port=$(port_of "$target"); pid=$(pid_of "$target")
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    if [[ $client == wrk ]]; then
        out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$port$PATH_")
        grep -q -e "Non-2xx" -e "Socket errors" <<<"$out" && log "errors in $client $target: $out"
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    else
        out=$(h2load --h1 -n"$H2LOAD_N" -c"$CONNS" -t2 "http://127.0.0.1:$port$PATH_")
        rps=$(awk '/^finished in/ {print $4}' <<<"$out")
        reqs=$(awk '/^requests:/ {print $8}' <<<"$out")   # succeeded
        [[ $reqs == "$H2LOAD_N" ]] || log "h2load $target: only $reqs of $H2LOAD_N succeeded"
    fi
    if [[ -n $pid ]]; then
        after=$(cpu_ticks "$pid")
        awk -v r="$rps" -v t=$((after - before)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%s %.2f\n", r, t / hz * 1e6 / n }'
    else
        echo "$rps -"
    fi
}

declare -A RPS CPU
for round in $(seq "$ROUNDS"); do
    for client in wrk h2load; do
        order=("${TARGETS[@]:$((round % 3))}" "${TARGETS[@]:0:$((round % 3))}")
        for target in "${order[@]}"; do
            read -r rps cpu < <(run "$client" "$target")
            log "round $round $client $target: $rps req/s, ${cpu} us CPU/request"
            RPS[$client,$target]+="$rps "; CPU[$client,$target]+="$cpu "
        done
    done
done
median() { tr ' ' '\n' | awk 'NF && $1 != "-"' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

DATE=$(date +%F)
OUT=$ROOT/bench/results/$DATE-http.md
{
    echo "# HTTP/1.1 proxy benchmark, $DATE"
    echo
    echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}' | cut -d- -f1), sluice $(git -C "$ROOT" rev-parse --short HEAD);"
    echo "one worker each; $CONNS connections; wrk -t2 -d$DURATION, h2load --h1 -n$H2LOAD_N; GET $PATH_ (17 bytes); medians of $ROUNDS rounds on $(nproc) cores."
    echo
    echo "| client | target | req/s | proxy CPU µs/req | req/s vs direct |"
    echo "|---|---|---:|---:|---:|"
    for client in wrk h2load; do
        direct=$(median <<<"${RPS[$client,direct]}")
        for target in "${TARGETS[@]}"; do
            r=$(median <<<"${RPS[$client,$target]}"); c=$(median <<<"${CPU[$client,$target]}")
            echo "| $client | $target | $r | $c | $(awk -v a="$r" -v b="$direct" 'BEGIN {printf "%.2f", a/b}') |"
        done
    done
    echo
    echo "| client | sluice/haproxy req/s | sluice/haproxy CPU per request |"
    echo "|---|---:|---:|"
    for client in wrk h2load; do
        rs=$(median <<<"${RPS[$client,sluice]}"); rh=$(median <<<"${RPS[$client,haproxy]}")
        cs=$(median <<<"${CPU[$client,sluice]}"); ch=$(median <<<"${CPU[$client,haproxy]}")
        echo "| $client | $(awk -v a="$rs" -v b="$rh" 'BEGIN {printf "%.2f", a/b}') | $(awk -v a="$cs" -v b="$ch" 'BEGIN {printf "%.2f", a/b}') |"
    done
    echo
    echo "Machine load is shared (2 cores, other builds may run): compare the ratios, not the absolute numbers."
} | tee "$OUT"
log "summary written to $OUT"

#!/usr/bin/env bash
# Side-by-side HTTP/1.1 reverse-proxy benchmark: wrk and `h2load --h1` against nginx
# directly, through HAProxy (mode http, nbthread 1) and through sluice's `http` listener
# (--workers 1), all in front of the same nginx (worker_processes 1) on free loopback
# ports, in one run. Each proxy keeps its upstream connections alive (HAProxy
# `http-reuse always`, sluice's pool), so both measure proxying, not connecting.
#
# The H2→H1 run (client `h2`: h2load -n$H2_N -c10 -m10, h2c prior knowledge) compares
# HTTP/2 clients converted to HTTP/1.1 upstream requests: sluice (same listener), HAProxy
# (an h2 frontend, `proto h2`, same backend) and nginx as a proxy (a second nginx,
# `listen ... http2`, `proxy_pass` to the first with upstream keepalive, master_process
# off so its CPU is one process). Its ratios are sluice/haproxy and sluice/nginx.
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
# Knobs (env): OUT (summary file), ROUNDS, DURATION, CONNS, H2LOAD_N, H2_N (h2 run requests), CLIENTS (default
#              "wrk h2load h2"), PATH_ (request path, default /index.html),
#              SLUICE (binary, default target/release/sluice), KEEP (1 = keep the scratch dir)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then : "${ROUNDS:=1}" "${DURATION:=5s}" "${H2LOAD_N:=50000}" "${H2_N:=50000}"; else : "${ROUNDS:=3}" "${DURATION:=10s}" "${H2LOAD_N:=200000}" "${H2_N:=200000}"; fi
: "${CONNS:=32}" "${PATH_:=/index.html}" "${KEEP:=0}" "${CLIENTS:=wrk h2load h2}"
SLUICE=${SLUICE:-$ROOT/target/release/sluice}
TARGETS=(direct haproxy sluice)
H2_TARGETS=(nginx haproxy sluice)
targets_of() { if [[ $1 == h2 ]]; then echo "${H2_TARGETS[@]}"; else echo "${TARGETS[@]}"; fi; }

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
HAPROXY_H2_PORT=$(free_port); NGINX_H2_PORT=$(free_port)
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
mkdir -p "$SCRATCH/front/logs"
cat > "$SCRATCH/front/nginx.conf" <<CONF
worker_processes 1; master_process off; daemon off; pid $SCRATCH/front/nginx.pid; error_log $SCRATCH/front/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; http2_max_requests 1000000;
  client_body_temp_path $SCRATCH/tmp; proxy_temp_path $SCRATCH/tmp; fastcgi_temp_path $SCRATCH/tmp; uwsgi_temp_path $SCRATCH/tmp; scgi_temp_path $SCRATCH/tmp;
  upstream up { server 127.0.0.1:$NGINX_PORT; keepalive 256; }
  server { listen 127.0.0.1:$NGINX_H2_PORT http2;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
CONF
nginx -p "$SCRATCH/front" -c "$SCRATCH/front/nginx.conf" & PIDS+=($!)
NGINX_FRONT_PID=$!
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
frontend fe2
  bind 127.0.0.1:$HAPROXY_H2_PORT proto h2
  default_backend be
backend be
  server n1 127.0.0.1:$NGINX_PORT
CONF
haproxy -f "$SCRATCH/haproxy.cfg" & PIDS+=($!)
HAPROXY_PID=$!
cat > "$SCRATCH/sluice.yaml" <<CONF
admin: { address: 127.0.0.1:$ADMIN_PORT }
clusters: [{ name: nginx, endpoints: ["127.0.0.1:$NGINX_PORT"] }]
listeners: [{ name: web, address: 127.0.0.1:$SLUICE_PORT, protocol: http, cluster: nginx }]
CONF
"$SLUICE" --config "$SCRATCH/sluice.yaml" --workers 1 >"$SCRATCH/sluice.log" 2>&1 & PIDS+=($!)
SLUICE_PID=$!
for p in $NGINX_PORT $HAPROXY_PORT $SLUICE_PORT $HAPROXY_H2_PORT $NGINX_H2_PORT; do wait_port "$p"; done
for p in $NGINX_PORT $HAPROXY_PORT $SLUICE_PORT; do curl -sf "http://127.0.0.1:$p$PATH_" >/dev/null || die "GET through :$p failed"; done
for p in $HAPROXY_H2_PORT $NGINX_H2_PORT $SLUICE_PORT; do
    curl -sf --http2-prior-knowledge "http://127.0.0.1:$p$PATH_" >/dev/null || die "h2c GET through :$p failed"
done

port_of() {
    case $1,$2 in
        h2,nginx) echo "$NGINX_H2_PORT";; h2,haproxy) echo "$HAPROXY_H2_PORT";; h2,sluice) echo "$SLUICE_PORT";;
        *,direct) echo "$NGINX_PORT";; *,haproxy) echo "$HAPROXY_PORT";; *,sluice) echo "$SLUICE_PORT";;
    esac
}
pid_of() { case $1,$2 in h2,nginx) echo "$NGINX_FRONT_PID";; *,haproxy) echo "$HAPROXY_PID";; *,sluice) echo "$SLUICE_PID";; *) echo "";; esac; }

# One run: prints "rps cpu_us_per_request".
run() {
    local client=$1 target=$2 port pid before after rps out
    port=$(port_of "$client" "$target"); pid=$(pid_of "$client" "$target")
    [[ -n $pid ]] && before=$(cpu_ticks "$pid")
    if [[ $client == wrk ]]; then
        out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "http://127.0.0.1:$port$PATH_")
        grep -q -e "Non-2xx" -e "Socket errors" <<<"$out" && log "errors in $client $target: $out"
        rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    elif [[ $client == h2 ]]; then
        out=$(h2load -n"$H2_N" -c10 -m10 -t2 "http://127.0.0.1:$port$PATH_")
        rps=$(awk '/^finished in/ {print $4}' <<<"$out")
        reqs=$(awk '/^status codes:/ {print $3}' <<<"$out")   # 2xx
        [[ $reqs == "$H2_N" ]] || log "h2load (h2) $target: only $reqs of $H2_N answered 2xx"
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
    for client in $CLIENTS; do
        read -r -a ts <<<"$(targets_of "$client")"
        order=("${ts[@]:$((round % 3))}" "${ts[@]:0:$((round % 3))}")
        for target in "${order[@]}"; do
            read -r rps cpu < <(run "$client" "$target")
            log "round $round $client $target: $rps req/s, ${cpu} us CPU/request"
            RPS[$client,$target]+="$rps "; CPU[$client,$target]+="$cpu "
        done
    done
done
median() { tr ' ' '\n' | awk 'NF && $1 != "-"' | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }

DATE=$(date +%F)
OUT=${OUT:-$ROOT/bench/results/$DATE-http.md}
{
    echo "# HTTP proxy benchmark (H1→H1, H2→H1), $DATE"
    echo
    echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), HAProxy $(haproxy -v | awk 'NR==1 {print $3}' | cut -d- -f1), sluice $(git -C "$ROOT" rev-parse --short HEAD);"
    echo "one worker each; $CONNS connections; wrk -t2 -d$DURATION, h2load --h1 -n$H2LOAD_N; h2: h2load -n$H2_N -c10 -m10 (h2c);"
    echo "GET $PATH_ (17 bytes); medians of $ROUNDS rounds on $(nproc) cores. The h2 rows' baseline is nginx proxying HTTP/2 to HTTP/1.1."
    echo
    echo "| client | target | req/s | proxy CPU µs/req | req/s vs first row |"
    echo "|---|---|---:|---:|---:|"
    for client in $CLIENTS; do
        read -r -a ts <<<"$(targets_of "$client")"
        direct=$(median <<<"${RPS[$client,${ts[0]}]}")
        for target in "${ts[@]}"; do
            r=$(median <<<"${RPS[$client,$target]}"); c=$(median <<<"${CPU[$client,$target]}")
            echo "| $client | $target | $r | $c | $(awk -v a="$r" -v b="$direct" 'BEGIN {printf "%.2f", a/b}') |"
        done
    done
    echo
    echo "| client | vs | sluice/other req/s | sluice/other CPU per request |"
    echo "|---|---|---:|---:|"
    ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b == 0 || a == "-" || b == "-") print "-"; else printf "%.2f", a/b}'; }
    for client in $CLIENTS; do
        others=(haproxy); [[ $client == h2 ]] && others=(haproxy nginx)
        for other in "${others[@]}"; do
            rs=$(median <<<"${RPS[$client,sluice]}"); ro=$(median <<<"${RPS[$client,$other]}")
            cs=$(median <<<"${CPU[$client,sluice]}"); co=$(median <<<"${CPU[$client,$other]}")
            echo "| $client | $other | $(ratio "$rs" "$ro") | $(ratio "$cs" "$co") |"
        done
    done
    echo
    echo "Machine load is shared (2 cores, other builds may run): compare the ratios, not the absolute numbers."
} | tee "$OUT"
log "summary written to $OUT"

#!/usr/bin/env bash
# Installs the real peers the test suite drives (Debian packages), when they are missing.
# As root it installs them; otherwise it names what is missing and how to get it.
set -euo pipefail

# binary -> Debian package
declare -A PEERS=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [redis-benchmark]=redis-tools
  [mariadbd]=mariadb-server
  [mariadb]=mariadb-client
  [sysbench]=sysbench
  [psql]=postgresql-client
  [nginx]=nginx
  [curl]=curl
  [wrk]=wrk
  [openssl]=openssl
)
# Peers outside PATH, by full path -> Debian package. Debian keeps the PostgreSQL server
# binaries per major version; pgbench ships with the server (postgresql-15, pulled in by
# `postgresql`), and /usr/bin/pgbench is only postgresql-common's wrapper around it.
declare -A PEER_PATHS=(
  [/usr/lib/postgresql/15/bin/postgres]=postgresql
  [/usr/lib/postgresql/15/bin/pgbench]=postgresql
)

missing=()
for bin in "${!PEERS[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]] || missing+=("${PEERS[$bin]}")
done
for path in "${!PEER_PATHS[@]}"; do
  [[ -x $path ]] || missing+=("${PEER_PATHS[$path]}")
done
# Python client libraries, for Debian's own python3.
/usr/bin/python3 -c 'import pymysql' 2>/dev/null || missing+=(python3-pymysql)
/usr/bin/python3 -c 'import psycopg' 2>/dev/null || missing+=(python3-psycopg)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
if ((${#missing[@]} == 0)); then
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
if [[ $(id -u) -ne 0 ]]; then
  echo "missing test peers: ${packages[*]} (install with: sudo apt-get install ${packages[*]})" >&2
  exit 1
fi
echo "installing test peers: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null

#!/usr/bin/env bash
# Installs the real peers the test suite drives (Debian packages), when they are missing.
# As root it installs them; otherwise it names what is missing and how to get it.
#
# MongoDB peers come from PyPI (no mongod installs offline, see PEERS.md section 5): a venv
# at target/peers/mongo-venv in the repository (tests/support/mongodb.rs looks there, or at
# $SLUICE_MONGO_VENV) with pymongo, secantusdb (the MongoDB-wire server secantusd-py) and
# mockupdb. Made by anyone (only python3-venv needs root); skipped when it already works.
#
# The gRPC peers (tests/http2_proxy.rs: a grpcio server and client, tests/http2/*.py) come
# from PyPI the same way: a venv at target/peers/grpc-venv (or $SLUICE_GRPC_VENV) with grpcio.
#
# Kafka peers: the broker is tansu 0.6.0 from crates.io, built with its memory storage
# (`--features dynostore`; PEERS.md section 4). The build takes about 8 minutes, so it is
# installed once into a cache outside the checkout, ${XDG_CACHE_HOME:-$HOME/.cache}/sluice/tansu-0.6.0
# (tests/support/kafka.rs looks there, or at $SLUICE_TANSU), and reused while its binary is
# there; CI should keep that directory between runs. The clients are a venv at
# target/peers/kafka-venv (or $SLUICE_KAFKA_VENV) with confluent-kafka (whose wheel's
# librdkafka kcat is run against) and kafka-python, and Debian's kcat.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mongo_venv=${SLUICE_MONGO_VENV:-$repo/target/peers/mongo-venv}
mongo_pip=(pymongo==4.20.1 secantusdb==0.7.0b3 mockupdb==1.8.1)
kafka_venv=${SLUICE_KAFKA_VENV:-$repo/target/peers/kafka-venv}
kafka_pip=(confluent-kafka==2.16.1 kafka-python==3.0.12)
tansu_version=0.6.0
tansu_root=${XDG_CACHE_HOME:-$HOME/.cache}/sluice/tansu-$tansu_version

install_mongo_venv() {
  if "$mongo_venv/bin/python" -c 'import pymongo, mockupdb' 2>/dev/null && [[ -x $mongo_venv/bin/secantusd-py ]]; then
    return 0
  fi
  if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "missing test peers: python3-venv (install with: sudo apt-get install python3-venv)" >&2
    return 1
  fi
  echo "installing the MongoDB test venv at $mongo_venv: ${mongo_pip[*]}"
  rm -rf "$mongo_venv"
  mkdir -p "$(dirname "$mongo_venv")"
  /usr/bin/python3 -m venv "$mongo_venv"
  "$mongo_venv/bin/pip" install -q --disable-pip-version-check "${mongo_pip[@]}"
}

grpc_venv=${SLUICE_GRPC_VENV:-$repo/target/peers/grpc-venv}
grpc_pip=(grpcio==1.85.1)

install_grpc_venv() {
  if "$grpc_venv/bin/python" -c 'import grpc' 2>/dev/null; then
    return 0
  fi
  echo "installing the gRPC test venv at $grpc_venv: ${grpc_pip[*]}"
  rm -rf "$grpc_venv"
  mkdir -p "$(dirname "$grpc_venv")"
  /usr/bin/python3 -m venv "$grpc_venv"
  "$grpc_venv/bin/pip" install -q --disable-pip-version-check "${grpc_pip[@]}"
}

install_kafka_venv() {
  if "$kafka_venv/bin/python" -c 'import confluent_kafka, kafka' 2>/dev/null; then
    return 0
  fi
  echo "installing the Kafka client venv at $kafka_venv: ${kafka_pip[*]}"
  rm -rf "$kafka_venv"
  mkdir -p "$(dirname "$kafka_venv")"
  /usr/bin/python3 -m venv "$kafka_venv"
  "$kafka_venv/bin/pip" install -q --disable-pip-version-check "${kafka_pip[@]}"
}

install_tansu() {
  if [[ -n ${SLUICE_TANSU:-} && -x $SLUICE_TANSU ]] || [[ -x $tansu_root/bin/tansu ]]; then
    return 0
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "missing test peer: tansu $tansu_version (building it needs cargo)" >&2
    return 1
  fi
  echo "building tansu $tansu_version with its memory storage into $tansu_root (about 8 minutes, once)"
  mkdir -p "$tansu_root"
  # The target dir sits in the cache too, so a build that is cut short resumes.
  cargo install tansu --version "$tansu_version" --features dynostore --root "$tansu_root" \
    --target-dir "$tansu_root/build"
  rm -rf "$tansu_root/build"
}

install_language_peers() {
  install_mongo_venv
  install_kafka_venv
  install_tansu
  install_grpc_venv
}

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
  [h2load]=nghttp2-client
  [openssl]=openssl
  [nutcracker]=nutcracker
  [kcat]=kcat
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
# The MongoDB venv needs Debian's venv module first.
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
/usr/bin/python3 -c 'import websockets' 2>/dev/null || missing+=(python3-websockets)
if ((${#missing[@]} == 0)); then
  install_language_peers
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
install_language_peers

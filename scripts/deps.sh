#!/usr/bin/env bash
# Installs the Debian 12 packages Aegis builds, tests and benchmarks with. Idempotent:
# packages already present are not fetched again.
# Usage: scripts/deps.sh [--clang]
#   --clang  also clang and its sanitizer and libFuzzer runtimes (the sanitizer build, fuzzing)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libboost1.81-dev libboost-program-options1.81-dev
  libssl-dev libsodium-dev libsystemd-dev nlohmann-json3-dev libfmt-dev catch2 libsqlite3-dev
  sqlite3 openssl python3 groff-base clang-format iproute2 util-linux procps psmisc
  mosquitto mosquitto-clients
  systemd # tests/cli/units_test.sh: systemd-analyze verify and security, systemd-sysusers
  logrotate # tests/cli/logrotate_test.sh: the packaged rotation of detached brokers' logs
  iptables iputils-ping # tests/cli/netfault_test.sh: packet loss and partitions, and measuring them
  python3-nacl # tests/vectors: PROTOCOL.md's test vectors recomputed independently of lib/
  prometheus # its promtool checks the gateway's /metrics (tests/cli/channel_controls_test.sh)
  liblmdb-dev # tests/bench/queue_bench.cpp: LMDB measured against SQLite for the outbound queue's redesign
  nats-server libnats-dev # scripts/bench.sh's second anchor: NATS core and JetStream, driven by tests/bench/nats_bench.cpp
  libmosquitto-dev # tests/bench/mosquitto_fanin.cpp: the fan-in case's 1,000 MQTT clients against mosquitto
  tinyproxy # tests/cli/connect_check_test.sh: the proxy step of aegis-connect --check and of the broker against a real HTTP CONNECT proxy
  libhiredis-dev # aegis-gateway --redis: several gateways sharing their state in Redis (lib/store/redis/)
  redis-server redis-sentinel # the Redis store's unit tests and tests/cli/cluster_test.sh start their own on loopback
  strace # tests/cli/queued_after_sync_test.sh: the broker's syncs and answers, in the order it made them
)
case ${1:-} in
  "") ;;
  --clang) packages+=(clang libclang-rt-14-dev) ;;
  *) echo "deps.sh: error: unknown argument '$1' (usage: scripts/deps.sh [--clang])" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: error: missing packages (${missing[*]}); run as root or install them" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

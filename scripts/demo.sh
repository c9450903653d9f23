#!/usr/bin/env bash
# The main job on one machine: installs and builds if needed, makes identities for a gateway,
# an agent and a backend, starts the gateway and both brokers on loopback, sends a policy from
# the backend to the agent and an anomaly from the agent to the backend, prints what each side
# received, and cleans up.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$("$root/scripts/build.sh" | tail -n 1)/tools

work=$(mktemp -d)
pids=()
cleanup() {
  for sock in "$work/agent.sock" "$work/backend.sock"; do
    [[ -S $sock ]] && "$bin/aegis-connect" --stop --socket "$sock" >/dev/null 2>&1 || true
  done
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "identities"
for who in gateway agent backend; do
  "$bin/aegis-keygen" -q -f "$work/$who/id_ed25519" -C "$who"
  "$bin/aegis-keygen" -l -f "$work/$who/id_ed25519"
done
{
  echo "# role and id for each identity the gateway accepts"
  echo "role=agent,id=host42 $(cat "$work/agent/id_ed25519.pub")"
  echo "role=backend,id=ops $(cat "$work/backend/id_ed25519.pub")"
} >"$work/authorized"

step "gateway"
"$bin/aegis-gateway" --listen 127.0.0.1:0 --identity "$work/gateway/id_ed25519" \
  --authorized "$work/authorized" --state-dir "$work/gateway/state" 2>"$work/gateway.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "listening on" "$work/gateway.log" && break
  sleep 0.1
done
port=$(sed -n 's/.*listening on [^ ]*:\([0-9]*\).*/\1/p' "$work/gateway.log" | head -n 1)
[[ -n $port ]] || { cat "$work/gateway.log" >&2; echo "demo: error: the gateway did not start" >&2; exit 1; }
echo "gateway listening on ws://127.0.0.1:$port"

step "brokers"
for who in agent backend; do
  "$bin/aegis-connect" "ws://127.0.0.1:$port" --identity "$work/$who/id_ed25519" \
    --backend-key "$work/gateway/id_ed25519.pub" --socket "$work/$who.sock" \
    --state-dir "$work/$who/state" --log "$work/$who.log"
done

step "subscribing"
"$bin/aegis-sub" --socket "$work/agent.sock" 'backend.host42.>' 'backend.all.>' -v -C 1 -W 10 >"$work/agent.out" &
sub_agent=$!
"$bin/aegis-sub" --socket "$work/backend.sock" 'agent.*.anomalies' -v -C 1 -W 10 >"$work/backend.out" &
sub_backend=$!
sleep 1  # let both subscriptions reach the gateway

step "sending"
"$bin/aegis-send" --socket "$work/backend.sock" backend.host42.policies --wait-ack \
  -m '{"policy":"deny-root-ssh","version":3}'
"$bin/aegis-send" --socket "$work/agent.sock" agent.host42.anomalies --wait-ack \
  -m '{"anomaly":"unexpected listener","port":31337}'

wait "$sub_agent" "$sub_backend"
step "the agent received"
cat "$work/agent.out"
step "the backend received"
cat "$work/backend.out"
step "gateway log"
cat "$work/gateway.log"

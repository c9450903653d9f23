#!/usr/bin/env bash
# "queued" means on disk: the broker answers a publish only after the write-ahead log holding it
# is synced (fdatasync or fsync of queue.db-wal), so that a power loss after aegis-send returned
# cannot take the message. A kill -9 test cannot see this (the page cache survives a killed
# process), so the broker runs under strace, and every "queued" answer it writes is checked
# against the system calls of the thread that wrote it: the publish read, then a sync of the log
# that returned, then the answer. Sends one-shot messages (one publish per connection) and a
# line-mode stream (many per connection, committed in groups).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v strace >/dev/null || skip "strace is missing (Debian package strace)"
strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace is not permitted)"

make_identities gateway host42 && authorize agent host42
start_gateway
trace=${KEEP_TRACE:-$TEST_TMP/broker.trace} # KEEP_TRACE=FILE: keep the trace there
# -f: the broker's threads; -y: the file behind each descriptor; -s: enough of each message to
# see the publish and the answer; -qq: no attach lines.
start_broker --foreground --via "strace -f -y -qq -s 512 -o $trace \
    -e trace=fdatasync,fsync,read,recvfrom,recvmsg,write,sendto,sendmsg" host42

one_shots=5
for ((i = 1; i <= one_shots; i++)); do
    expect_exit 0 "$send" --socket "$broker_sock" agent.host42.sync -m "one-shot $i"
done
lines=200
seq 1 "$lines" | sed 's/^/line /' >"$TEST_TMP/lines"
expect_exit 0 "$send" --socket "$broker_sock" -l agent.host42.sync <"$TEST_TMP/lines"
expect_exit 0 "$send" --socket "$broker_sock" --wait-ack agent.host42.sync -m "acknowledged"
expect_exit 0 "$queue" --socket "$broker_sock" stats --json
expect_match "$out" '"waiting": *0' "the queue once the gateway acknowledged everything"
expect_exit 0 "$AEGIS_BIN/aegis-connect" --stop --socket "$broker_sock"
wait_for "the broker to stop" 30 gone "$broker_pid"

# Per thread (the broker answers on the thread that read the publish): each answer that a
# publish is queued (a publish's message_id, a batch's count, the "queued" event of --wait-ack)
# must come after a sync of the log that started after the thread's last publish read and
# returned 0. A sync still unfinished when the answer is written does not count.
report=$(awk '
    { tid = $1 }
    /(read|recvfrom|recvmsg)\(.*\\"channel\\":/ { last_read[tid] = NR; reads++ }
    /(fdatasync|fsync)\([0-9]+<[^>]*queue\.db-wal>\) += 0/ { last_sync[tid] = NR }
    /(fdatasync|fsync)\([0-9]+<[^>]*queue\.db-wal> <unfinished/ { sync_start[tid] = NR }
    /<\.\.\. (fdatasync|fsync) resumed>.* = 0/ { if (tid in sync_start) last_sync[tid] = sync_start[tid] }
    /(write|sendto|sendmsg)\(/ {
        line = $0
        n = gsub(/\{\\"id\\":[0-9]+,\\"message_id\\":\\"[0-9a-f]+\\",\\"ok\\":true\}/, "", line)
        n += gsub(/\{\\"count\\":[0-9]+,\\"id\\":[0-9]+,\\"ok\\":true\}/, "", line)
        n += gsub(/\{\\"id\\":[0-9]+,\\"message_ids\\":\[[^]]*\],\\"ok\\":true\}/, "", line)
        n += gsub(/\{\\"event\\":\\"queued\\",/, "", line)
        if (n > 0) {
            answers += n
            if (!(tid in last_sync) || last_sync[tid] < last_read[tid]) { bad += n; if (!first) first = NR }
        }
    }
    END { printf "%d %d %d %d\n", reads, answers, bad, first }' "$trace")
read -r reads answers bad first <<<"$report"
echo "publish reads: $reads; queued answers: $answers; answered before a sync: $bad"
((reads > 0)) || fail "no publish read in the broker's trace ($(wc -l <"$trace") lines)"
# One answer per one-shot, one or more for the line stream, one for --wait-ack.
((answers >= one_shots + 2)) || fail "only $answers queued answers in the broker's trace, expected $((one_shots + 2)) or more"
((bad == 0)) || fail "$bad queued answer(s) written before the log was synced; first at line $first of the trace: $(sed -n "${first}p" "$trace" | cut -c1-300)"

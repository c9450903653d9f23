#!/usr/bin/env bash
# Every numeric and duration option of every tool has a range and is checked before the tool does
# anything: -1, 0 (where 0 is out of range), a value past the range, a number too big for 64 bits
# and garbage each exit 2 with one stderr line naming the option and the range; the ends of the
# range are taken. The table below must name every such option --help lists (value N, SECS or
# DURATION), so an option added later without a range fails here.
# Each row starts its tool a dozen times: the rows of aegis-sub, aegis-queue and aegis-keygen,
# aegis-stat and each daemon are parts of their own, so that a slow machine (a sanitizer build
# beside other work) runs them side by side within the time limit of one test.
# Parts: sub queue stat connect gateway
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

nosock=$TEST_TMP/no-broker.sock
# Arguments after which an accepted value makes the tool fail only for want of a broker (exit 3),
# or, for the daemons, --help (exit 0: the value was read and checked before --help is answered).
send_ctx="--socket $nosock agent.host42.x -m x"
sub_ctx="--socket $nosock backend.host42.x"
queue_ctx="--socket $nosock ls"
stat_ctx="--socket $nosock"

# tool | option | lowest | highest | a value just past the highest | accept: 3 (no broker) or 0 (--help)
table="
aegis-send|--count|1|1000000|1000001|3|$send_ctx
aegis-send|--replies|1|10000|10001|3|$send_ctx
aegis-send|--ttl|1ms|720h|721h|3|$send_ctx
aegis-send|--timeout|1ms|24h|25h|3|$send_ctx
aegis-sub|--count|1|1000000000|1000000001|3|$sub_ctx
aegis-sub|--wait|1ms|720h|721h|3|$sub_ctx
aegis-sub|--jobs|1|256|257|3|$sub_ctx
aegis-sub|--exec-timeout|0|24h|25h|3|--socket $nosock --exec true backend.host42.x
aegis-queue|--limit|1|100000|100001|3|$queue_ctx
aegis-queue|--timeout|1ms|1h|61m|3|$queue_ctx
aegis-queue|--ttl|1ms|720h|721h|3|--socket $nosock retry 0123456789abcdef0123456789abcdef
aegis-stat|--warn-queue|0|1000000000|1000000001|3|$stat_ctx
aegis-stat|--crit-queue|0|1000000000|1000000001|3|$stat_ctx
aegis-stat|--warn-dead|0|1000000000|1000000001|3|$stat_ctx
aegis-stat|--crit-dead|0|1000000000|1000000001|3|$stat_ctx
aegis-stat|--warn-age|0|31536000|31536001|3|$stat_ctx
aegis-stat|--crit-age|0|31536000|31536001|3|$stat_ctx
aegis-stat|--crit-disconnected|0|31536000|31536001|3|$stat_ctx
aegis-stat|--timeout|1ms|1h|61m|3|$stat_ctx
aegis-stat|--watch|100ms|1h|61m|-|$stat_ctx
aegis-connect|--timeout|0.1|86400|86401|0|--help
aegis-connect|--backoff-min|0.01|3600|3601|0|--help
aegis-connect|--backoff-max|0.01|86400|86401|0|--help
aegis-connect|--heartbeat|0|86400|86401|0|--help
aegis-connect|--queue-max-messages|1|1000000000|1000000001|0|--help
aegis-connect|--queue-max-bytes|1024|1099511627776|1099511627777|0|--help
aegis-keygen|--serial|0|18446744073709551615|18446744073709551616|0|--help
aegis-connect|--cursor-max-messages|1|1000000000|1000000001|0|--help
aegis-connect|--max-attempts|0|1000000|1000001|0|--help
aegis-connect|--batch-format|1|2|3|0|--help
aegis-gateway|--max-sessions|1|1000000|1000001|0|--help
aegis-gateway|--redis-db|0|65535|65536|0|--help
aegis-gateway|--redis-wait-replicas|0|64|65|0|--help
aegis-gateway|--redis-wait-timeout|1|1500|1501|0|--help
aegis-gateway|--max-message-bytes|1024|17825792|17825793|0|--help
aegis-gateway|--handshake-timeout|1|300|301|0|--help
aegis-gateway|--clock-skew|1|86400|86401|0|--help
aegis-gateway|--inbox-max-messages|1|1000000000|1000000001|0|--help
aegis-gateway|--inbox-max-age|1|31536000|31536001|0|--help
aegis-gateway|--replay-window|1|65536|65537|0|--help
aegis-gateway|--replay-rate|0|1000000|1000001|0|--help
"

# The name an error gives the option: aegis-sub reads -W itself, under its short name.
error_name() {
    [[ $1 == aegis-sub && $2 == --wait ]] && echo "-W" || echo "$2"
}

# in_this_part TOOL: the tool's rows belong to this run (the part named after it, or main).
in_this_part() {
    case $1 in
        aegis-sub) part sub ;;
        aegis-queue | aegis-keygen) part queue ;;
        aegis-stat) part stat ;;
        aegis-connect) part connect ;;
        aegis-gateway) part gateway ;;
        *) part main ;;
    esac
}

rows=0
while IFS='|' read -r tool option low high past accept ctx; do
    [[ -n $tool ]] || continue
    in_this_part "$tool" || continue
    rows=$((rows + 1))
    path=$AEGIS_BIN/$tool
    name=$(error_name "$tool" "$option")
    read -ra args <<<"$ctx"
    bad=(-1 "$past" 18446744073709551616 99999999999999999999999 garbage "" 1x 0x10 " 1")
    [[ $low != 0 ]] && bad+=(0)
    for value in "${bad[@]}"; do
        expect_error 2 "$path" "$option" "$value" "${args[@]}"
        expect_contains "$err" "$name needs" "$tool $option '$value': stderr"
        expect_contains "$err" "from $low to $high" "$tool $option '$value': stderr"
    done
    expect_error 2 "$path" "$option=-1" "${args[@]}"
    [[ $accept == - ]] && continue
    for value in "$low" "$high"; do
        expect_exit "$accept" "$path" "$option" "$value" "${args[@]}"
        expect_not_contains "$err" "$name" "$tool $option $value: stderr"
    done
done <<<"$table"
((rows > 0)) || fail "the option table has no row for this part ($TEST_PART)"
if ! part main; then
    summary
    exit
fi

# The short forms are the same options.
read -ra args <<<"$send_ctx"
expect_error 2 "$AEGIS_BIN/aegis-send" -n -1 "${args[@]}"
expect_contains "$err" "--count needs a whole number from 1 to 1000000, not '-1'"
expect_error 2 "$AEGIS_BIN/aegis-sub" -C -3 backend.host42.x
expect_contains "$err" "--count needs a whole number from 1 to 1000000000, not '-3'"

# Every option --help lists with a numeric value is in the table, for every built tool.
tools=0
for path in "$AEGIS_BIN"/aegis-*; do
    [[ -f $path && -x $path ]] || continue
    tool=$(basename "$path")
    tools=$((tools + 1))
    expect_exit 0 "$path" --help
    numeric=$(grep -oE -- '--[a-z][a-z0-9-]*( \])? (N|SECS|DURATION)\b' <<<"$out" | cut -d' ' -f1 | sort -u)
    for option in $numeric; do
        grep -q "^$tool|$option|" <<<"$table" || fail "$tool $option takes a number but has no row in the table"
        check_passed
    done
done
((tools >= 7)) || fail "expected the seven tools in $AEGIS_BIN, found $tools"

summary

#!/usr/bin/env bash
# aegis-connect --socket-group GROUP: the socket is 0660 and its directory 0750 for GROUP; the
# broker admits its own uid, root and the members of GROUP (primary or supplementary group),
# and refuses everyone else with permission_denied (exit 3), even one who gets past the file
# modes. Needs root to make throwaway users and a group (removed at exit).

# shellcheck source=tests/cli/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root to create throwaway users and a group"
    exit 77
fi
for tool in useradd userdel groupadd groupdel setpriv; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is missing (passwd, util-linux)"
        exit 77
    fi
done

for tool in "$connect" "$stat" "$send" "$keygen"; do
    [[ -x $tool ]] || fail "no $tool"
done


# Short unique names (useradd allows 32 characters).
tag=ag$$
group=${tag}g
owner=${tag}own     # runs the broker; in the group so it may give the socket to it
member=${tag}sup    # in the group as a supplementary group
primary=${tag}pri   # the group is its primary group
stranger=${tag}out  # not in the group
groupadd "$group" || fail "groupadd failed"
at_exit groupdel "$group"
useradd -M -N -s /usr/sbin/nologin -g nogroup -G "$group" "$owner" || fail "useradd failed"
at_exit userdel "$owner"
useradd -M -N -s /usr/sbin/nologin -g nogroup -G "$group" "$member" || fail "useradd failed"
at_exit userdel "$member"
useradd -M -N -s /usr/sbin/nologin -g "$group" "$primary" || fail "useradd failed"
at_exit userdel "$primary"
useradd -M -N -s /usr/sbin/nologin -g nogroup "$stranger" || fail "useradd failed"
at_exit userdel "$stranger"

as() { # as USER CMD...: runs CMD with USER's uid, primary group and supplementary groups
    local user=$1
    shift
    setpriv --reuid "$user" --regid "$(id -g "$user")" --init-groups -- "$@"
}
expect_error_as() { # expect_error_as CODE USER TOOL ARGS...: expect_error with the tool run as USER
    local code=$1 user=$2 tool
    tool=$(basename "$3")
    shift 2
    expect_exit "$code" as "$user" "$@"
    expect_lines 1 "$err" "stderr"
    expect_match "$err" "^${tool}: error: " "stderr"
}

# The test's directory must be passable for them; what is inside keeps its own modes.
chmod 0711 "$TEST_TMP"
home=$TEST_TMP/owner
mkdir -m 0700 "$home"
"$keygen" -q -f "$home/id" -C host42 || fail "aegis-keygen failed"
"$keygen" -q -f "$TEST_TMP/gateway" -C gateway || fail "aegis-keygen failed"
cp "$TEST_TMP/gateway.pub" "$home/gateway.pub"
chown -R "$owner" "$home"
run_dir=$TEST_TMP/run
sock=$run_dir/broker.sock

# --- a group that does not exist is a usage error ---------------------------------------------------------

expect_error_as 2 "$owner" "$connect" ws://127.0.0.1:9/ --foreground --no-wait --identity "$home/id" \
    --backend-key "$home/gateway.pub" --socket "$sock" --state-dir "$home/state" --socket-group "${tag}none"
expect_contains "$err" "--socket-group: no group named '${tag}none'"

# --- the broker, run by its owner with the socket open to the group ----------------------------------------

# Nothing listens on port 9 (discard): the broker serves its socket and keeps trying.
mkdir -m 0755 "$run_dir"
chown "$owner" "$run_dir"
# setpriv itself in the background (not the function `as`), so that $! is the broker.
setpriv --reuid "$owner" --regid "$(id -g "$owner")" --init-groups -- "$connect" ws://127.0.0.1:9/ --foreground \
    --no-wait --identity "$home/id" --backend-key "$home/gateway.pub" --socket "$sock" --state-dir "$home/state" \
    --socket-group "$group" --backoff-min 1 --backoff-max 5 --heartbeat 0 2>>"$TEST_TMP/broker.log" &
at_exit kill -KILL $!
wait_for "the broker's socket" 20 test -S "$sock"

expect_mode 660 "$sock"
expect_eq "$(stat -c %G "$sock")" "$group" "the socket's group"
expect_mode 750 "$run_dir"
expect_eq "$(stat -c %G "$run_dir")" "$group" "the socket directory's group"

expect_exit 0 as "$owner" "$stat" --socket "$sock" --json
expect_match "$out" '"state":' "the owner's status"
expect_exit 0 as "$member" "$stat" --socket "$sock" --json
expect_match "$out" '"state":' "a supplementary member's status"
expect_exit 0 as "$primary" "$stat" --socket "$sock" --json
expect_match "$out" '"state":' "a primary member's status"
expect_exit 0 "$stat" --socket "$sock" --json
expect_match "$out" '"state":' "root's status"
expect_exit 0 as "$member" "$send" --socket "$sock" agent.host42.status -m "from a group member"

# Someone else does not get through the file modes...
expect_error_as 3 "$stranger" "$stat" --socket "$sock" --json
# ...nor through the broker's own check when the modes are opened wide.
chmod 0755 "$run_dir"
chmod 0666 "$sock"
expect_error_as 3 "$stranger" "$stat" --socket "$sock" --json
# The refusal frame, or the close after it when the client reads that first (the broker's log
# below is the sure sign).
expect_match "$err" "serves another user|another user's broker" "the refusal"
wait_for "the refusal in the broker's log" 10 grep -q "refused local connection from uid $(id -u "$stranger")" \
    "$TEST_TMP/broker.log"
check_passed
# The members still get in after that.
expect_exit 0 as "$member" "$stat" --socket "$sock" --json

summary

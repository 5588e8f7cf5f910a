#!/usr/bin/env bash
# The initd demo: an app server started the way a container starts it, then
# stopped the way `docker stop` stops it. Run it with `sudo ./dev demo`
# (or `sudo PYTHON=/path/to/python-with-initd bash demo/demo.sh`).
#
# No Docker needed: `unshare` gives the app the two things a container gives
# it that matter here, a PID namespace of its own (initd becomes PID 1) and a
# hostname of its own (unicorn-1).
set -euo pipefail

DEMO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DEMO_DIR                      # demo/roles.json runs "$DEMO_DIR/app.py"
PYTHON=${PYTHON:-python3}
# The interpreter itself, not a wrapper script (pyenv's shims are bash scripts
# that would fork a dozen processes in the namespace before initd starts).
PYTHON=$("$PYTHON" -c 'import sys; print(sys.executable)') ||
    { echo "demo: no python at ${PYTHON}" >&2; exit 1; }
# The python that has initd also runs the app ("python3" in roles.json).
PATH="$(dirname "$(command -v "$PYTHON")"):$PATH"
ROLES=$DEMO_DIR/roles.json
WORK=$(mktemp -d /tmp/initd-demo.XXXXXX)

if [ -t 1 ]; then B=$'\033[1m' D=$'\033[2m' N=$'\033[0m'; else B='' D='' N=''; fi
say()   { printf '%s\n' "$B$*$N"; }
note()  { printf '%s\n' "$*"; }
# On a terminal, a pause before each step so a person can read along
# (DEMO_PAUSE=0 to skip).
PAUSE=${DEMO_PAUSE:-$([ -t 1 ] && echo 2 || echo 0)}
step()  { sleep "$PAUSE"; printf '\n%s\n' "$B== $* ==$N"; }
shown=0
# Prints what the processes in the namespace wrote since the last call, indented.
show_output() {
    local total
    total=$(wc -l <"$WORK/out")
    if [ "$total" -gt "$shown" ]; then
        tail -n "+$((shown + 1))" "$WORK/out" | head -n "$((total - shown))" | sed "s/^/    $D|$N /"
        shown=$total
    fi
}
# wait_for SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds.
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
log_has() { grep -q -- "$1" "$WORK/out"; }
gone() { ! kill -0 "$1" 2>/dev/null; }

UNSHARE_PID='' INIT_PID=''
cleanup() {
    # On any failure: kill what we started, by pid. SIGKILL to a namespace's
    # PID 1 takes every process in that namespace with it.
    [ -n "$INIT_PID" ] && kill -KILL "$INIT_PID" 2>/dev/null
    [ -n "$UNSHARE_PID" ] && kill -KILL "$UNSHARE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    printf '\n%s\n' "${B}demo failed: $*$N" >&2
    show_output >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root for PID and UTS namespaces: sudo ./dev demo"
"$PYTHON" -c 'import initd' 2>/dev/null || fail "$PYTHON cannot import initd: run sudo ./dev demo"

# start_namespace INITD-ARGS...: like `docker run --hostname unicorn-1`:
# a new PID namespace whose PID 1 is initd, with its own /proc and hostname.
start_namespace() {
    : >"$WORK/out"; shown=0
    # The hostname is set before the PID namespace exists, so that `hostname`
    # does not take PID 2 in it. Then unshare forks, and its child is PID 1
    # inside; outside, that child has an ordinary pid.
    # shellcheck disable=SC2016  # $0 and $@ are the inner shell's
    unshare --uts -- /bin/sh -c \
        'hostname unicorn-1 && exec unshare --pid --fork --mount-proc -- "$0" -m initd "$@"' \
        "$PYTHON" "$@" >>"$WORK/out" 2>&1 </dev/null &
    UNSHARE_PID=$!
    wait_for 5 find_init || fail "the namespace did not start"
}

# Sets INIT_PID to the child of unshare that is PID 1 in its namespace (the
# last NSpid field in /proc/PID/status is the pid as seen inside).
find_init() {
    local child
    for child in $(ps -o pid= --ppid "$UNSHARE_PID"); do
        if awk '$1 == "NSpid:" && $NF == 1 { found = 1 } END { exit !found }' \
               "/proc/$child/status" 2>/dev/null; then
            INIT_PID=$child
            return 0
        fi
    done
    return 1
}

# stop_namespace: SIGTERM to PID 1, as `docker stop` does; sets STATUS.
stop_namespace() {
    kill -TERM "$INIT_PID"
    wait_for 20 gone "$UNSHARE_PID" || fail "initd did not exit within 20 s of SIGTERM"
    STATUS=0
    wait "$UNSHARE_PID" || STATUS=$?
    UNSHARE_PID='' INIT_PID=''
}

say "initd demo: an app server as a container runs it, stopped as docker stops it"
note "
The app (demo/app.py) is a tiny pre-fork server like unicorn: a master and two
workers. Like unicorn it has two ways to stop:
  SIGQUIT  graceful: the workers finish the requests in flight, exit 0
  SIGTERM  immediate: requests in flight are lost
'docker stop' always sends SIGTERM. initd, as PID 1, translates it."

step "1. The roles file tells initd how to run the app"
sed "s/^/    /" "$ROLES"
note "
'initd check' shows what initd will do with the role 'web':"
"$PYTHON" -m initd check --roles "$ROLES" --role web | sed "s/^/    /"
note "(the fqdn line shows this machine's name; in the namespace it is unicorn-1)"

step "2. Start it the way a container starts"
note "\$ unshare --uts  sh -c 'hostname unicorn-1; exec unshare --pid --fork --mount-proc  initd --verbose --control \$WORK/initd.sock --roles demo/roles.json --role web'"
start_namespace --verbose --control "$WORK/initd.sock" --roles "$ROLES" --role web
wait_for 15 log_has "ready: workers" || fail "the app did not say it was ready within 15 s"
sleep 0.3  # the workers' first lines
show_output
note "
The app was started as pid 3, and its parent is pid 2, not 1: some apps treat
getppid() == 1 as 'my parent died, shut down'. And gethostname() gives the app
its fully qualified name, as roles.json asked, while the namespace's hostname
stays unicorn-1."

step "3. The processes in the namespace, as seen from inside"
note "\$ nsenter --target $INIT_PID --pid --mount  ps -e -o pid,ppid,pgid,args"
# ps itself joins the namespace from outside (its parent is 0): leave it out.
nsenter --target "$INIT_PID" --pid --mount ps -e -o pid,ppid,pgid,args |
    awk 'NR == 1 || !($2 == 0 && $1 != 1)' | sed "s/^/    /"
note "
  PID 1  initd: it reaps zombies and passes signals on, translated
  PID 2  ppidshim: a small C program whose only job is to be the app's parent
  PID 3  the app's master, and its two workers below it
Outside the namespace the same initd is an ordinary process, pid $INIT_PID:"
ps -o pid,ppid,args -p "$UNSHARE_PID,$INIT_PID" | sed "s/^/    /"

step "4. Ask initd how the app is doing, as 'docker exec ... initd status' would"
note "\$ initd status --control \$WORK/initd.sock"
"$PYTHON" -m initd status --control "$WORK/initd.sock" | sed "s/^/    /" ||
    fail "initd status got no answer"
HEALTH=0
"$PYTHON" -m initd health --ready --control "$WORK/initd.sock" >/dev/null || HEALTH=$?
note "\$ initd health --ready   -> exit $B$HEALTH$N (0: ready for traffic; what a Docker
HEALTHCHECK or a Kubernetes readinessProbe runs)"
[ "$HEALTH" = 0 ] || fail "expected initd health --ready to exit 0, got $HEALTH"

step "5. Stop it, as 'docker stop' does: SIGTERM to PID 1"
note "\$ kill -TERM $INIT_PID"
stop_namespace
show_output
log_has "got SIGQUIT: graceful stop" || fail "the app did not get SIGQUIT"
note "
initd got SIGTERM and, as the role says, delivered SIGQUIT: the workers
finished their requests and the master exited 0."

step "6. initd exits with the app's own status"
note "exit status of initd (what 'docker inspect' would call ExitCode): $B$STATUS$N"
[ "$STATUS" = 0 ] || fail "expected exit status 0 after a graceful stop, got $STATUS"

step "7. For contrast: the same app without the translation"
note "\$ ... initd --verbose --no-control -- python3 demo/app.py web      (no role, no signal map)"
start_namespace --verbose --no-control -- python3 "$DEMO_DIR/app.py" web
wait_for 15 log_has "ready: workers" || fail "the app did not say it was ready within 15 s"
sleep 0.3
show_output
note "\$ kill -TERM $INIT_PID"
stop_namespace
show_output
note "
Without a map initd passes SIGTERM on as it is: unicorn stops at once, work in
flight is lost, and the app dies of the signal. initd reports that the way a
shell does, 128 + 15 (SIGTERM): exit status $B$STATUS$N"
[ "$STATUS" = 143 ] || fail "expected exit status 143 after SIGTERM, got $STATUS"

say "
Done. In a container: docker/make-base-image, then Dockerfile.example, and
tests/docker/test_image.py checks all of the above against a real Docker."

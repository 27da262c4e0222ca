#!/bin/bash
# ocf-tester against contrib/ocf/xpp, with xppd driving an emulated TwinStar Astribank served
# over USB/IP on loopback (port 1 unpowered, so a demote keeps the lines: one host, no peer);
# then the bad configurations: each must give its OCF code and a clear message.
# Usage: ci/cluster/ocf-test.sh EXAMPLES_DIR (holds xppd, twinstar, usbip-serve)
set -eu
E=$(cd "${1:?EXAMPLES_DIR}" && pwd)
AGENT=$(cd "$(dirname "$0")/../../contrib/ocf" && pwd)/xpp
W=$(mktemp -d /tmp/xpp-ocf.XXXXXX)
PORT=${PORT:-3341}
cleanup() { [ -n "${EMU:-}" ] && kill "$EMU" 2>/dev/null; exec 3>&- 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkfifo "$W/emu.in"
"$E/usbip-serve" --twinstar --stage running --listen 127.0.0.1:$PORT --watchdog-ms 200 --commands \
  <"$W/emu.in" >"$W/emu.log" 2>&1 &
EMU=$!
exec 3>"$W/emu.in"
echo "vbus 1 off" >&3
for i in $(seq 50); do grep -q "ok: vbus 1 off" "$W/emu.log" && break; sleep 0.1; done
grep -q "ok: vbus 1 off" "$W/emu.log" || fail "emulator not ready: $(cat "$W/emu.log")"

export HA_RSCTMP="$W/rsctmp"
mkdir -p "$HA_RSCTMP"
P="-o demote_timeout=2 -o device=usbip:127.0.0.1:$PORT/1-1 -o socket=$W/run/xppd.sock -o binary=$E/xppd -o twinstar=$E/twinstar"
T=$(date +%s.%N)
# shellcheck disable=SC2086
ocf-tester -v -n xpp-ocf $P "$AGENT" >"$W/ocf-tester.log" 2>&1 || { cat "$W/ocf-tester.log"; fail "ocf-tester"; }
grep -q "passed all tests" "$W/ocf-tester.log" || { cat "$W/ocf-tester.log"; fail "ocf-tester did not pass all tests"; }
echo "ocf-tester: passed all tests ($(echo "$(date +%s.%N) - $T" | bc) s)"
grep -E "^(Testing|Checking)" "$W/ocf-tester.log" | sed 's/^/  /' || true
[ -z "$(ls "$HA_RSCTMP")" ] || fail "state left behind: $(ls "$HA_RSCTMP")"

# Bad configurations: OCF code and message (ocf-exit-reason on stderr).
expect() {   # expect CODE TEXT ACTION [VAR=VALUE...]
  local code=$1 text=$2 action=$3; shift 3
  local out rc=0
  out=$(env OCF_ROOT=/usr/lib/ocf OCF_RESOURCE_INSTANCE=xpp-bad \
        OCF_RESKEY_device="usbip:127.0.0.1:$PORT/1-1" OCF_RESKEY_socket="$W/bad/xppd.sock" \
        OCF_RESKEY_binary="$E/xppd" OCF_RESKEY_twinstar="$E/twinstar" "$@" "$AGENT" "$action" 2>&1) || rc=$?
  [ "$rc" = "$code" ] || fail "$action $*: exit $rc, expected $code: $out"
  echo "$out" | grep -q -- "$text" || fail "$action $*: no \"$text\" in: $out"
  echo "  $action $* -> $rc: $(echo "$out" | grep -- "$text" | head -n 1)"
}
echo "bad configurations:"
expect 6 "parameter device is required" validate-all OCF_RESKEY_device=
expect 6 "names no device for node" start OCF_RESKEY_device="othernode=usbip:127.0.0.1:$PORT/1-1"
expect 6 "parameter socket is empty" start OCF_RESKEY_socket=
expect 6 "is not an absolute path" validate-all OCF_RESKEY_socket=run/xppd.sock
expect 6 "not a positive integer" validate-all OCF_RESKEY_promote_timeout=soon
expect 6 "is not a boolean" validate-all OCF_RESKEY_watchdog=maybe
expect 5 "is not an executable file" start OCF_RESKEY_binary=/nonexistent/xppd
expect 5 "is not an executable file" validate-all OCF_RESKEY_twinstar=/nonexistent/twinstar
expect 7 "" monitor OCF_RESKEY_binary=/nonexistent/xppd OCF_RESKEY_CRM_meta_interval=0
expect 0 "" stop OCF_RESKEY_binary=/nonexistent/xppd
expect 6 "needs meta attribute notify=true" start OCF_RESKEY_CRM_meta_clone_max=2 OCF_RESKEY_CRM_meta_notify=false
# the socket missing: nothing answers there
expect 7 "" monitor
expect 7 "promote: xppd is not running" promote
# xppd refuses its arguments: start fails as a configuration error, with xppd's reason
expect 6 "bad arguments" start OCF_RESKEY_options="--bridge 3:3"
# the socket removed under a running xppd: a failure, said so; stop still succeeds
expect 0 "" start OCF_RESKEY_start_settle=1
rm -f "$W/bad/xppd.sock"
expect 1 "control socket $W/bad/xppd.sock does not answer" monitor OCF_RESKEY_CRM_meta_interval=3000
expect 0 "" stop
[ -z "$(ls "$HA_RSCTMP")" ] || fail "state left behind: $(ls "$HA_RSCTMP")"
echo "PASS"

#!/bin/bash
# contrib/systemd/xppd.service passes `systemd-analyze verify` (with ExecStart pointing at the
# built xppd) without a single remark, and says Type=notify. Usage: unit-test.sh EXAMPLES_DIR
set -eu
E=$(cd "${1:?EXAMPLES_DIR}" && pwd)
U=$(cd "$(dirname "$0")/../../contrib/systemd" && pwd)/xppd.service
W=$(mktemp -d /tmp/xpp-unit.XXXXXX)
trap 'rm -rf "$W"' EXIT
command -v systemd-analyze >/dev/null || { echo "FAIL: systemd-analyze missing (package systemd)" >&2; exit 1; }
sed "s|/usr/local/bin/xppd|$E/xppd|" "$U" >"$W/xppd.service"
out=$(systemd-analyze verify "$W/xppd.service" 2>&1) || { echo "FAIL: $out" >&2; exit 1; }
[ -z "$out" ] || { echo "FAIL: systemd-analyze verify: $out" >&2; exit 1; }
grep -qx "Type=notify" "$U" || { echo "FAIL: not Type=notify" >&2; exit 1; }
echo "systemd-analyze verify: clean; Type=notify"
echo "PASS"

#!/usr/bin/env bash
# Boots the kernel USB stack test's guest under QEMU (TCG software emulation: no KVM needed)
# and reports its result lines. Builds the guest first unless --no-build.
#
#   ci/kernel-usb-vm/run.sh [--no-build]
#
# Prints every `KVM-TEST <name> PASS|FAIL <detail>` line of the guest (and its KVM-LOG lines);
# exits non-zero on any FAIL, on no PASS at all, or when the final `KVM-DONE` marker is
# missing (guest crashed or timed out). The whole console is kept in $KVM_OUT/console.log.
#
# Environment: KVM_OUT (default target/kernel-usb-vm), KVM_TIMEOUT (seconds, default 300),
# KVM_BACKENDS (e.g. "nusb"; default every backend the test program was built with),
# KVM_SMP (guest CPUs, default 2), and build-guest.sh's variables.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${KVM_OUT:-$repo/target/kernel-usb-vm}"
timeout_s="${KVM_TIMEOUT:-300}"
smp="${KVM_SMP:-2}"

build=1
for a in "$@"; do
  case "$a" in
    --no-build) build=0 ;;
    *) echo "usage: $0 [--no-build]" >&2; exit 2 ;;
  esac
done

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "run: installing qemu-system-x86"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null
fi

if [ "$build" = 1 ]; then
  "$here/build-guest.sh"
fi
mkdir -p "$out"
out="$(cd "$out" && pwd)"
for f in vmlinuz initrd.gz; do
  [ -f "$out/$f" ] || { echo "run: $out/$f missing (run build-guest.sh)" >&2; exit 1; }
done

append="console=ttyS0 quiet panic=-1"
if [ -n "${KVM_BACKENDS:-}" ]; then
  # One kernel-command-line word reaches /init as one environment variable.
  append="$append KVM_BACKENDS=${KVM_BACKENDS// /,}"
fi

console="$out/console.log"
echo "run: booting $(cat "$out/kernel-version" 2>/dev/null || echo kernel) under qemu (tcg, ${smp} cpus, timeout ${timeout_s}s)"
start_ms=$(date +%s%3N)
set +e
timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
  -accel tcg -m 1024 -smp "$smp" -nic none -nographic -no-reboot \
  -kernel "$out/vmlinuz" -initrd "$out/initrd.gz" -append "$append" \
  </dev/null >"$console" 2>&1
qemu_rc=$?
set -e
elapsed_ms=$(($(date +%s%3N) - start_ms))
elapsed="$((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))"
tr -d '\r' <"$console" >"$console.txt"
mv "$console.txt" "$console"

grep -E '^KVM-(TEST|LOG|DMESG|DONE)' "$console" || true
echo "run: qemu exited with $qemu_rc after ${elapsed}s (console: $console)"

fails=$(grep -c '^KVM-TEST .* FAIL' "$console" || true)
passes=$(grep -c '^KVM-TEST .* PASS' "$console" || true)
if ! grep -q '^KVM-DONE' "$console"; then
  echo "run: FAILED: no KVM-DONE marker (guest crashed or timed out); last console lines:"
  tail -n 40 "$console"
  exit 1
fi
if [ "$fails" -gt 0 ] || [ "$passes" -eq 0 ]; then
  echo "run: FAILED: $fails failed, $passes passed"
  exit 1
fi
echo "run: all $passes passed"

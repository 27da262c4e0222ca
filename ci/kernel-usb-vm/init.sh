#!/bin/busybox sh
# shellcheck shell=dash
# /init of the kernel USB stack test's guest (busybox initramfs built by build-guest.sh).
# Mounts the kernel filesystems, loads the USB/IP host controller (vhci_hcd), runs the test
# program, prints its result lines and a final marker on the console, and powers off.
# Words of the kernel command line such as KVM_BACKENDS=... arrive here as environment.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
ip link set lo up
read -r up _ </proc/uptime
echo "KVM-LOG guest up after ${up}s, kernel $(uname -r)"

fail=0
for m in usbcore vhci-hcd; do
  if ! modprobe "$m"; then
    echo "KVM-TEST guest.modprobe-$m FAIL modprobe $m failed"
    fail=1
  fi
done
i=0
while [ ! -e /sys/devices/platform/vhci_hcd.0/attach ] && [ "$i" -lt 50 ]; do
  sleep 0.1
  i=$((i + 1))
done
if [ -e /sys/devices/platform/vhci_hcd.0/attach ]; then
  echo "KVM-TEST guest.vhci-hcd PASS $(grep -c '^hs' /sys/devices/platform/vhci_hcd.0/status) high-speed vhci ports"
else
  echo "KVM-TEST guest.vhci-hcd FAIL no /sys/devices/platform/vhci_hcd.0/attach"
  fail=1
fi

# Debian's udev daemon, if build-guest.sh put it in: nusb's hotplug watch listens to the
# events udevd re-broadcasts (netlink group 2), not to the kernel's own. No rules.
if [ -x /lib/systemd/systemd-udevd ]; then
  mkdir -p /run
  if /lib/systemd/systemd-udevd --daemon --resolve-names=never 2>/tmp/udevd.err; then
    i=0
    while ! udevadm control --ping 2>/dev/null && [ "$i" -lt 50 ]; do
      sleep 0.1
      i=$((i + 1))
    done
    echo "KVM-LOG systemd-udevd $(udevadm --version) started (no rules)"
  else
    echo "KVM-LOG systemd-udevd did not start: $(cat /tmp/udevd.err)"
  fi
fi

if [ "$fail" = 0 ]; then
  # KVM_BACKENDS: a comma-separated list (one kernel command line word).
  # shellcheck disable=SC2046 # split into words on purpose
  XPP_FIRMWARE_DIR=/firmware /xpp-kvm-guest $(echo "${KVM_BACKENDS:-}" | tr , ' ')
  rc=$?
else
  rc=1
fi
if [ "$rc" != 0 ]; then
  dmesg | tail -n 60 | sed 's/^/KVM-DMESG /'
fi
read -r up _ </proc/uptime
echo "KVM-DONE rc=$rc uptime=${up}s"
sync
poweroff -f

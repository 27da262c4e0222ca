#!/usr/bin/env bash
# Builds the guest of the kernel USB stack test (see README.md here):
#   $KVM_OUT/vmlinuz    Debian's current stock kernel (linux-image-amd64's dependency)
#   $KVM_OUT/initrd.gz  busybox, the USB/IP modules, the test program and its libraries,
#                       the firmware images of a cold FXS + FXO device, and init.sh as /init
# Nothing is installed into the host: packages are fetched with `apt-get download` and
# unpacked with `dpkg-deb`. Downloads are cached in $KVM_OUT/debs.
#
# Environment: KVM_OUT (default target/kernel-usb-vm), KVM_PROFILE (cargo profile, default
# release), KVM_FEATURES (cargo features of the test program, default rusb),
# XPP_FIRMWARE_DIR (where USB_FW.hex, FPGA_1161.hex, PIC_TYPE_1.hex and PIC_TYPE_2.hex are;
# default testdata/firmware), KVM_DAHDI (1: include Debian's astribank_tool from the dahdi
# package as an independent MPP client; default 1),
# KVM_UDEV (1: include Debian's systemd-udevd from the udev package, for nusb's hotplug
# watch; default 1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${KVM_OUT:-$repo/target/kernel-usb-vm}"
profile="${KVM_PROFILE:-release}"
features="${KVM_FEATURES:-rusb}"
firmware="${XPP_FIRMWARE_DIR:-$repo/testdata/firmware}"
mkdir -p "$out/debs"
out="$(cd "$out" && pwd)"

log() { printf 'build-guest: %s\n' "$*"; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
command -v depmod >/dev/null 2>&1 || [ -x /sbin/depmod ] || need+=(kmod)
command -v cpio >/dev/null 2>&1 || need+=(cpio)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
depmod="$(command -v depmod || echo /sbin/depmod)"

# --- the kernel: resolved each time (the ABI name changes with security updates) ----------
kpkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$kpkg" ]; then
  $SUDO apt-get update -qq
  kpkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
[ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
kver="${kpkg#linux-image-}"
log "kernel package $kpkg"

fetch() { # fetch PACKAGE: the .deb's path in $out/debs (downloaded once)
  local pkg="$1" deb
  deb="$(find "$out/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)"
  if [ -z "$deb" ]; then
    (cd "$out/debs" && apt-get download "$pkg" >/dev/null 2>&1) || { log "apt-get download $pkg failed"; return 1; }
    deb="$(find "$out/debs" -maxdepth 1 -name "${pkg}_*.deb" | head -n 1)"
  fi
  printf '%s\n' "$deb"
}

kdir="$out/kernel-$kver"
if [ ! -f "$kdir/boot/vmlinuz-$kver" ]; then
  kdeb="$(fetch "$kpkg")"
  rm -rf "$kdir.tmp" && mkdir -p "$kdir.tmp"
  # Only what the USB/IP path needs: the image and drivers/usb/{common,core,usbip}.
  dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$kdir.tmp" --wildcards \
    "./boot/vmlinuz-$kver" \
    "./lib/modules/$kver/kernel/drivers/usb/common/*" \
    "./lib/modules/$kver/kernel/drivers/usb/core/*" \
    "./lib/modules/$kver/kernel/drivers/usb/usbip/*" \
    "./lib/modules/$kver/modules.order" \
    "./lib/modules/$kver/modules.builtin" \
    "./lib/modules/$kver/modules.builtin.modinfo"
  rm -rf "$kdir" && mv "$kdir.tmp" "$kdir"
fi
dahdi="${KVM_DAHDI:-1}"
ddir="$out/dahdi"
if [ "$dahdi" = 1 ] && [ ! -x "$ddir/usr/sbin/astribank_tool" ]; then
  rm -rf "$ddir" && mkdir -p "$ddir"
  for pkg in dahdi libusb-1.0-0 libudev1; do
    dpkg-deb -x "$(fetch "$pkg")" "$ddir"
  done
fi
# Debian's udev daemon (systemd-udevd is udevadm under another name), for nusb's hotplug
# watch, which listens to udevd's netlink broadcasts rather than the kernel's.
udev="${KVM_UDEV:-1}"
udir="$out/udev"
if [ "$udev" = 1 ] && [ ! -x "$udir/bin/udevadm" ]; then
  rm -rf "$udir" && mkdir -p "$udir"
  dpkg-deb --fsys-tarfile "$(fetch udev)" | tar -x -C "$udir" ./bin/udevadm
fi
bbdir="$out/busybox"
if [ ! -x "$bbdir/bin/busybox" ]; then
  bdeb="$(fetch busybox-static)"
  rm -rf "$bbdir" && mkdir -p "$bbdir"
  dpkg-deb -x "$bdeb" "$bbdir"
fi

# --- the test program ---------------------------------------------------------------------
log "cargo build -p xpp-kvm-guest --profile $profile --features '$features'"
(cd "$repo" && cargo build -p xpp-kvm-guest --profile "$profile" --features "$features" --locked)
dir="$profile"
[ "$profile" = dev ] && dir=debug
bin="${CARGO_TARGET_DIR:-$repo/target}/$dir/xpp-kvm-guest"

# --- the initramfs ------------------------------------------------------------------------
root="$out/root"
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,firmware,lib/modules}
cp "$bbdir/bin/busybox" "$root/bin/busybox"
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init"
cp -a "$kdir/lib/modules/$kver" "$root/lib/modules/"
"$depmod" -b "$root" "$kver"
cp "$bin" "$root/xpp-kvm-guest"
# Shared libraries of the test program (the dynamic loader, libc, libgcc_s, ...), at the
# same absolute paths as on the host.
copy_libs() { # copy_libs BINARY [LIBRARY_PATH]: its shared libraries, at the host's paths
  LD_LIBRARY_PATH="${2:-}" ldd "$1" | awk '/=> \// {print $3} /^\t\// {print $1}' | while read -r lib; do
    local dest="$lib"
    case "$lib" in "$out"/*) dest="/usr/lib/x86_64-linux-gnu/$(basename "$lib")" ;; esac
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$lib" "$root$dest"
  done
}
copy_libs "$bin"
if [ "$dahdi" = 1 ]; then
  mkdir -p "$root/usr/sbin"
  cp "$ddir/usr/sbin/astribank_tool" "$root/usr/sbin/"
  copy_libs "$ddir/usr/sbin/astribank_tool" "$ddir/usr/lib/x86_64-linux-gnu:$ddir/lib/x86_64-linux-gnu"
fi
if [ "$udev" = 1 ]; then
  # No rules at all: udevd only re-broadcasts the kernel's uevents to libudev listeners.
  mkdir -p "$root/lib/systemd" "$root/etc/udev/rules.d" "$root/run"
  cp "$udir/bin/udevadm" "$root/bin/udevadm"
  ln -s /bin/udevadm "$root/lib/systemd/systemd-udevd"
  copy_libs "$udir/bin/udevadm"
fi
if ldd "$bin" | grep -q 'libusb'; then
  log "note: the test program links the system libusb (copied in)"
fi
# The images a cold FXS + FXO device needs (driver-cold), nothing else: USB_FW.hex (FX2 RAM),
# FPGA_1161.hex (MPP DEV_SEND), PIC_TYPE_1.hex (FXS) and PIC_TYPE_2.hex (FXO).
for f in USB_FW.hex FPGA_1161.hex PIC_TYPE_1.hex PIC_TYPE_2.hex; do
  cp "$firmware/$f" "$root/firmware/"
done
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) | gzip -1 >"$out/initrd.gz"
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"
printf '%s\n' "$kver" >"$out/kernel-version"
log "guest ready: $out/vmlinuz ($kver), $out/initrd.gz ($(du -h "$out/initrd.gz" | cut -f1))"

#!/bin/sh
# Builds libxpp and installs it into a prefix: lib/libxpp.so, lib/libxpp.a,
# include/xpp.h and lib/pkgconfig/xpp.pc, so that a C program builds with
#   cc prog.c $(pkg-config --cflags --libs xpp)
# with PKG_CONFIG_PATH=PREFIX/lib/pkgconfig (and runs with PREFIX/lib in the loader path).
# Usage: crates/xpp-ffi/install.sh PREFIX [release|dev]   (default: release)
set -eu
prefix="${1:?usage: install.sh PREFIX [release|dev]}"
profile="${2:-release}"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
case "$profile" in
  release) out="release" ;;
  dev) out="debug" ;;
  *) echo "install.sh: unknown profile $profile (release or dev)" >&2; exit 2 ;;
esac
cargo build --manifest-path "$root/Cargo.toml" -p xpp-ffi --profile "$profile" --locked
target="${CARGO_TARGET_DIR:-$root/target}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$target/$out/libxpp_ffi.so" "$prefix/lib/libxpp.so"
cp "$target/$out/libxpp_ffi.a" "$prefix/lib/libxpp.a"
cp "$here/include/xpp.h" "$prefix/include/"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$here/xpp.pc.in" > "$prefix/lib/pkgconfig/xpp.pc"
echo "installed libxpp $version into $prefix"

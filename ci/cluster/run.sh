#!/bin/bash
# The cluster-manager tests of issue 11 (docs/ha.md): installs what the machine lacks (timed),
# builds xppd, twinstar and usbip-serve, then runs each test and prints its wall time.
# Needs root (network namespaces, Pacemaker's daemons). Each test cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
secs() { echo "$(( $(date +%s) - $1 ))s"; }

T=$(date +%s)
need=""
for p in pacemaker corosync resource-agents pacemaker-cli-utils keepalived libxml2-utils bc iproute2 systemd; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
  $SUDO apt-get update -qq
  # policy-rc.d on CI images refuses to start the daemons: wanted, the tests start them.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
fi
echo "install:${need:- (nothing missing)} ($(secs $T))"

T=$(date +%s)
cargo build --locked --example xppd --example twinstar --example usbip-serve
echo "build: $(secs $T)"
E="$PWD/target/debug/examples"

for t in ${XPP_CLUSTER_TESTS:-unit-test ocf-test pcmk-test keepalived-test}; do
  T=$(date +%s)
  echo "--- $t"
  $SUDO bash "ci/cluster/$t.sh" "$E"
  echo "--- $t: passed ($(secs $T))"
done

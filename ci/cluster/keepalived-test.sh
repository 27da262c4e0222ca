#!/bin/bash
# Two keepalived instances (VRRP, unicast) in network namespaces ka1 and ka2, each beside an
# xppd, with contrib/keepalived's notify script and vrrp_script health check; one emulated
# TwinStar Astribank in a third namespace behind a bridge (ka1 imports port 0, ka2 port 1).
# Scenarios (times printed):
#   1. ka1 (priority 150) becomes MASTER: the virtual IP and the lines are on ka1; a call;
#   2. ka1's keepalived stopped: ka2 becomes MASTER and the device moves to ka2, call kept;
#   3. ka1's keepalived started again: it preempts, the device comes back, call kept;
#   4. ka1's PBX turns unhealthy (its health command fails): the vrrp_script puts ka1 in
#      FAULT and the lines move to ka2.
# Nothing is reachable from the root namespace. Usage: ci/cluster/keepalived-test.sh EXAMPLES_DIR
set -eu
E=$(cd "${1:?EXAMPLES_DIR}" && pwd)
K=$(cd "$(dirname "$0")/../../contrib/keepalived" && pwd)
W=$(mktemp -d /tmp/xpp-ka.XXXXXX)
DEV=10.78.1.254:3240
VIP=10.78.0.100
now() { date +%s.%N; }
el()  { echo "scale=2; ($(now) - $1)/1" | bc; }
fail() {
  echo "FAIL: $*" >&2
  for n in 1 2; do
    echo "--- ka$n xppd"; tail -n 20 "$W/xppd$n.log"
    echo "--- ka$n keepalived"; tail -n 20 "$W/ka$n.log"
    echo "--- ka$n notify"; cat "$W/notify$n.log" 2>/dev/null
  done >&2
  echo "--- emulator" >&2; tail -n 10 "$W/emu.log" >&2
  exit 1
}
PIDS=""
cleanup() {
  set +e
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
  exec 3>&- 2>/dev/null
  for n in ka1 ka2 kadev; do ip netns del $n 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT

for n in 1 2; do
  ip netns add ka$n
  ip -n ka$n link set lo up
done
ip netns add kadev
ip -n kadev link set lo up
ip link add veth1 netns ka1 type veth peer name veth2 netns ka2
ip -n ka1 addr add 10.78.0.1/24 dev veth1
ip -n ka2 addr add 10.78.0.2/24 dev veth2
ip -n ka1 link set veth1 up
ip -n ka2 link set veth2 up
ip -n kadev link add br0 type bridge
ip -n kadev addr add 10.78.1.254/24 dev br0
ip -n kadev link set br0 up
for n in 1 2; do
  ip link add dev$n netns ka$n type veth peer name port$n netns kadev
  ip -n ka$n addr add 10.78.1.$n/24 dev dev$n
  ip -n ka$n link set dev$n up
  ip -n kadev link set port$n master br0
  ip -n kadev link set port$n up
done

mkfifo "$W/emu.in"
ip netns exec kadev "$E/usbip-serve" --twinstar --stage running --listen $DEV --watchdog-ms 200 \
  --jump-delay-ms 100 --commands <"$W/emu.in" >"$W/emu.log" 2>&1 &
PIDS="$PIDS $!"
exec 3>"$W/emu.in"
emu() {
  local n; n=$(wc -l <"$W/emu.log"); echo "$1" >&3
  for i in $(seq 50); do
    tail -n +$((n + 1)) "$W/emu.log" | grep -m1 -E '^(ok|status|heard|error)' && return 0; sleep 0.1
  done; fail "emulator did not answer $1"
}
for i in $(seq 50); do grep -q "on $DEV" "$W/emu.log" && break; sleep 0.1; done

# xppd on each host; its health command is "the file healthyN exists".
for n in 1 2; do
  touch "$W/healthy$n"
  ip netns exec ka$n "$E/xppd" --usbip $DEV --busid 1-$n --socket "$W/xppd$n.sock" --layout-dir "$W/layout$n" \
    --health-cmd "test -e $W/healthy$n" --health-interval-ms 200 >"$W/xppd$n.log" 2>&1 &
  PIDS="$PIDS $!"
done
st()    { "$E/twinstar" --socket "$W/xppd$1.sock" status 2>/dev/null; }
holds() { st $1 | grep -q '"devices":\[[0-9]'; }
has_vip() { ip -n ka$1 -4 addr show dev veth$1 | grep -q "$VIP/"; }
wait_for() {
  local s=$1 what=$2; shift 2; local end=$(( $(date +%s) + s ))
  until "$@"; do [ $(date +%s) -lt $end ] || fail "not within ${s}s: $what"; sleep 0.05; done
}
# The call: phone off hook, the line seized and answered (Connected), and a 1 kHz tone from
# the phone reaches the far party through the driving host's bridge. A dropped call cannot
# come back to Connected by itself (a new seizure is DialTone), so waiting for it is safe.
call_up() {
  emu status | grep -q "phone=off-hook line=Connected" || return 1
  emu tone >/dev/null; sleep 0.6; emu heard | grep -q "1kHz=yes"
}
wait_for 20 "xppd on ka1 holds the device" holds 1
wait_for 20 "xppd on ka2 answers" sh -c "$E/twinstar --socket $W/xppd2.sock status >/dev/null 2>&1"

start_ka() {   # start_ka N PRIORITY
  local n=$1 peer=$(( 3 - $1 ))
  cat >"$W/ka$n.conf" <<CONF
global_defs {
    router_id xpp-ka$n
    script_user root
}
vrrp_script xpp {
    script "$K/xpp-check -s $W/xppd$n.sock -t $E/twinstar"
    interval 1
    timeout 2
    fall 2
    rise 2
}
vrrp_instance PBX {
    state BACKUP
    interface veth$n
    virtual_router_id 51
    priority $2
    advert_int 1
    unicast_src_ip 10.78.0.$n
    unicast_peer {
        10.78.0.$peer
    }
    virtual_ipaddress {
        $VIP/24
    }
    track_script {
        xpp
    }
    notify "$K/xpp-notify -s $W/xppd$n.sock -t $E/twinstar -w 10 -l $W/notify$n.log"
}
CONF
  ip netns exec ka$n keepalived -n -l -D -f "$W/ka$n.conf" -p "$W/ka$n.pid" -r "$W/ka$n-vrrp.pid" \
    -c "$W/ka$n-check.pid" >>"$W/ka$n.log" 2>&1 &
  eval "KA$n=$!"
  PIDS="$PIDS $!"
}

# ---- 1. ka1 elected
T=$(now); start_ka 1 150; start_ka 2 100
wait_for 30 "ka1 holds the virtual IP" has_vip 1
echo "1. ka1 MASTER after $(el $T)s"
holds 1 || fail "ka1 is MASTER without the device"
wait_for 10 "ka2 BACKUP" grep -q "PBX BACKUP" "$W/notify2.log"
emu offhook >/dev/null
wait_for 10 "ka1's PBX seizes the line" grep -q "FXO 15 seized" "$W/xppd1.log"
emu answer >/dev/null
wait_for 10 "the call carries audio" call_up
echo "   lines and virtual IP on ka1, call up: $(emu status)"

# ---- 2. ka1's keepalived stopped
T=$(now); kill -TERM "$KA1"
wait_for 30 "ka2 holds the device" holds 2
t_dev=$(el $T)
wait_for 30 "ka2 holds the virtual IP" has_vip 2
echo "2. ka1's keepalived stopped: ka2's spans up after ${t_dev}s, virtual IP on ka2 after $(el $T)s"
grep -q "hand-over: Operator" "$W/xppd1.log" || fail "ka1 did not hand over (STOP)"
wait_for 10 "ka2's PBX seizes the line" grep -q "FXO 15 seized" "$W/xppd2.log"
wait_for 10 "the call carries audio" call_up
emu status | grep -q "port=1" || fail "device not on port 1"
echo "   call kept, audio through the bridge: $(emu status)"
wait "$KA1" 2>/dev/null || true

# ---- 3. ka1 back: it preempts
sleep 1
T=$(now); start_ka 1 150
wait_for 30 "ka1 holds the device again" holds 1
t_dev=$(el $T)
wait_for 30 "ka1 holds the virtual IP again" has_vip 1
echo "3. ka1's keepalived started: preempts, ka1's spans up after ${t_dev}s (VRRP start-up included)"
has_vip 2 && fail "both hold the virtual IP"
wait_for 10 "the call carries audio" call_up
echo "   call kept, audio through the bridge: $(emu status)"

# ---- 4. ka1's PBX unhealthy
sleep 2
T=$(now); rm -f "$W/healthy1"
wait_for 30 "ka2 holds the device" holds 2
t_dev=$(el $T)
wait_for 30 "ka2 holds the virtual IP" has_vip 2
echo "4. ka1's PBX unhealthy: ka2's spans up after ${t_dev}s, virtual IP on ka2 after $(el $T)s"
wait_for 10 "the call carries audio" call_up
echo "   call kept, audio through the bridge: $(emu status)"
echo "PASS"

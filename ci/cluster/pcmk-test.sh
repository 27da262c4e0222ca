#!/bin/bash
# Two-node Pacemaker + Corosync cluster (ci/cluster/pcmk-netns.sh, from
# docs/reference/cluster-netns.md) drives one emulated TwinStar Astribank through
# contrib/ocf/xpp as a promotable clone. The device (usbip-serve) lives in a third network
# namespace, xppdev, behind a bridge at 10.77.1.254; node 1 imports port 0 (bus id 1-1), node
# 2 port 1 (1-2). Nothing is reachable from the root namespace. Scenarios (times printed):
#   1. the cluster promotes node 1 and its lines come up; a call is set up there;
#   2. node 1 killed (its whole namespace): the 200 ms watchdog moves the device to node 2
#      before Corosync declares node 1 dead (the race), Pacemaker promotes node 2, the call
#      is kept; no failback when node 1 rejoins;
#   3. crm_resource --ban --promoted of node 2: an orderly switch-over (demote = hand-over,
#      no watchdog jump) back to node 1, the call kept;
#   4. node 1's xppd killed (SIGKILL): the watchdog moves the lines to node 2 at once;
#      Pacemaker recovers and settles with one promoted node holding the device;
#   5. crm_resource --move --promoted to the other node: the device follows.
# Usage: ci/cluster/pcmk-test.sh EXAMPLES_DIR
set -eu
E=$(cd "${1:?EXAMPLES_DIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export BASE=${BASE:-/tmp/xpp-pcmk-ci} TOKEN=${TOKEN:-1000}
C="$HERE/pcmk-netns.sh"
AGENT_DIR=/usr/lib/ocf/resource.d/xpp
DEV=10.77.1.254:3240
now() { date +%s.%N; }
el()  { echo "scale=2; ($(now) - $1)/1" | bc; }
fail() {
  echo "FAIL: $*" >&2
  for n in 1 2; do
    echo "--- node$n xppd.log"; $C x $n cat /run/xpp/xppd.log 2>/dev/null | tail -n 30
    echo "--- node$n crm_mon"; $C x $n crm_mon -1 2>/dev/null | tail -n 12
  done >&2
  echo "--- emulator"; tail -n 20 "$BASE/emu.log" >&2
  exit 1
}
cleanup() {
  set +e
  [ -n "${EMU:-}" ] && kill "$EMU" 2>/dev/null
  exec 3>&- 2>/dev/null
  $C cleanup
  ip netns del xppdev 2>/dev/null
  rm -rf "$AGENT_DIR"
}
trap cleanup EXIT

# ---- set-up: the cluster, the device network, the agent
install -D -m 0755 "$HERE/../../contrib/ocf/xpp" "$AGENT_DIR/xpp"
$C setup
ip netns add xppdev
ip -n xppdev link set lo up
ip -n xppdev link add br0 type bridge
ip -n xppdev addr add 10.77.1.254/24 dev br0
ip -n xppdev link set br0 up
for n in 1 2; do
  ip link add dev$n netns pcmk$n type veth peer name port$n netns xppdev
  ip -n pcmk$n addr add 10.77.1.$n/24 dev dev$n
  ip -n pcmk$n link set dev$n up
  ip -n xppdev link set port$n master br0
  ip -n xppdev link set port$n up
done
mkfifo "$BASE/emu.in"
ip netns exec xppdev "$E/usbip-serve" --twinstar --stage running --listen $DEV --watchdog-ms 200 \
  --jump-delay-ms 100 --commands <"$BASE/emu.in" >"$BASE/emu.log" 2>&1 &
EMU=$!
exec 3>"$BASE/emu.in"
emu() {   # emu COMMAND: the emulator's answer line
  local n; n=$(wc -l <"$BASE/emu.log"); echo "$1" >&3
  for i in $(seq 50); do
    tail -n +$((n + 1)) "$BASE/emu.log" | grep -m1 -E '^(ok|status|heard|error)' && return 0; sleep 0.1
  done; fail "emulator did not answer $1"
}
T=$(now); $C startall
$C wait_online 1 120 || fail "cluster formation"; $C wait_online 2 60 || fail "cluster formation"
echo "formation: $(el $T)s (token ${TOKEN} ms)"
for n in 1 2; do $C x $n timeout 5 bash -c "exec 5<>/dev/tcp/${DEV%:*}/${DEV#*:}" || fail "node$n cannot reach the device"; done

st()  { $C x $1 "$E/twinstar" --socket /run/xpp/xppd.sock status 2>/dev/null; }
holds() { st $1 | grep -q '"devices":\[[0-9]'; }
promoted_on() { $C promoted_on ${1:-1} xpp-clone; }
wait_for() {   # wait_for SECONDS WHAT CMD...: polls CMD every 50 ms
  local s=$1 what=$2; shift 2; local end=$(( $(date +%s) + s ))
  until "$@"; do [ $(date +%s) -lt $end ] || fail "not within ${s}s: $what"; sleep 0.05; done
}
is_promoted() { [ "$(promoted_on $1)" = "node$2" ]; }
logged() { $C x $1 grep -q -- "$2" /run/xpp/xppd.log; }
# The call: phone off hook, the line seized and answered (Connected), and a 1 kHz tone from
# the phone reaches the far party through the driving host's bridge. A dropped call cannot
# come back to Connected by itself (a new seizure is DialTone), so waiting for it is safe.
call_up() {
  emu status | grep -q "phone=off-hook line=Connected" || return 1
  emu tone >/dev/null; sleep 0.6; emu heard | grep -q "1kHz=yes"
}

# ---- 1. first promotion, lines up on node 1, a call
T=$(now)
$C x 1 cibadmin -C -o resources -X "
<clone id=\"xpp-clone\">
  <meta_attributes id=\"xpp-clone-meta\">
    <nvpair id=\"xpp-clone-promotable\" name=\"promotable\" value=\"true\"/>
    <nvpair id=\"xpp-clone-promoted-max\" name=\"promoted-max\" value=\"1\"/>
    <nvpair id=\"xpp-clone-clone-max\" name=\"clone-max\" value=\"2\"/>
    <nvpair id=\"xpp-clone-clone-node-max\" name=\"clone-node-max\" value=\"1\"/>
    <nvpair id=\"xpp-clone-notify\" name=\"notify\" value=\"true\"/>
  </meta_attributes>
  <primitive id=\"xpp\" class=\"ocf\" provider=\"xpp\" type=\"xpp\">
    <instance_attributes id=\"xpp-params\">
      <nvpair id=\"xpp-device\" name=\"device\" value=\"node1=usbip:$DEV/1-1 node2=usbip:$DEV/1-2\"/>
      <nvpair id=\"xpp-binary\" name=\"binary\" value=\"$E/xppd\"/>
      <nvpair id=\"xpp-twinstar\" name=\"twinstar\" value=\"$E/twinstar\"/>
      <nvpair id=\"xpp-promote-timeout\" name=\"promote_timeout\" value=\"10\"/>
    </instance_attributes>
    <operations>
      <op id=\"xpp-start\" name=\"start\" interval=\"0\" timeout=\"30s\"/>
      <op id=\"xpp-stop\" name=\"stop\" interval=\"0\" timeout=\"30s\"/>
      <op id=\"xpp-promote\" name=\"promote\" interval=\"0\" timeout=\"30s\"/>
      <op id=\"xpp-demote\" name=\"demote\" interval=\"0\" timeout=\"20s\"/>
      <op id=\"xpp-notify\" name=\"notify\" interval=\"0\" timeout=\"20s\"/>
      <op id=\"xpp-monitor-promoted\" name=\"monitor\" interval=\"1s\" role=\"Promoted\" timeout=\"10s\"/>
      <op id=\"xpp-monitor-unpromoted\" name=\"monitor\" interval=\"2s\" role=\"Unpromoted\" timeout=\"10s\"/>
    </operations>
  </primitive>
</clone>" || fail "cibadmin"
wait_for 60 "node1 promoted" is_promoted 1 1
echo "1. first promotion: $(el $T)s on node1"
holds 1 || fail "node1 promoted without the device: $(st 1)"
logged 1 "device 0 up" || fail "node1's spans are not up"
emu offhook >/dev/null
wait_for 10 "node1's PBX seizes the line" logged 1 "FXO 15 seized"
emu answer >/dev/null
wait_for 10 "the call carries audio" call_up
echo "   lines up on node1, call up: $(emu status)"

# ---- 2. node 1 killed
T=$(now); $C killnode 1
wait_for 30 "node2 holds the device" holds 2
t_dev=$(el $T)
wait_for 60 "node2 promoted" is_promoted 2 2
t_pro=$(el $T)
echo "2. node1 killed: node2's spans up after ${t_dev}s, node2 promoted after ${t_pro}s"
emu status | grep -q "port=1" || fail "the device is not on port 1: $(emu status)"
wait_for 10 "node2's PBX seizes the line" logged 2 "FXO 15 seized"
wait_for 10 "the call carries audio" call_up
echo "   call kept, audio through the bridge: $(emu status)"
T=$(now); $C start 1; $C wait_online 2 120 || fail "node1 rejoins"
echo "   node1 rejoined: $(el $T)s"
wait_for 30 "node1's xppd up as backup" sh -c "$C x 1 $E/twinstar --socket /run/xpp/xppd.sock status 2>/dev/null | grep -q backup"
sleep 3
is_promoted 2 2 || fail "unexpected failback: $(promoted_on 2)"

# ---- 3. orderly switch-over back to node 1
T=$(now); $C x 2 crm_resource --ban --promoted -r xpp-clone -N node2 >/dev/null 2>&1
wait_for 30 "node1 holds the device" holds 1
t_dev=$(el $T)
wait_for 30 "node1 promoted" is_promoted 1 1
t_pro=$(el $T)
echo "3. ban --promoted node2: node1's spans up after ${t_dev}s, node1 promoted after ${t_pro}s"
logged 2 "hand-over: Operator" || fail "node2 did not hand over on demote"
logged 1 "failover" || fail "node1 shows no take-over timeline"
wait_for 10 "node1's PBX seizes the line" logged 1 "FXO 15 seized"
wait_for 10 "the call carries audio" call_up
echo "   orderly (demote = hand-over, no watchdog jump), call kept, audio through the bridge: $(emu status)"
$C x 1 crm_resource --clear -r xpp-clone >/dev/null 2>&1
sleep 2

# ---- 4. node 1's xppd killed
# The watchdog moves the device to node 2 at once. Pacemaker recovers node 1's instance in
# place (demote, stop, start, promote) when it planned that before node 2's monitor raised
# node 2's promotion score: then node 2's pre-promote notification hands the device back.
# Either end is right as long as the promoted node holds the device and the call stays up.
settled() {   # one promoted node, holding the device; the other not holding it
  local p; p=$(promoted_on 2); [ "$p" = node1 ] || [ "$p" = node2 ] || return 1
  local o=2; [ "$p" = node2 ] && o=1
  holds ${p#node} && ! holds $o && SETTLED=$p
}
pid=$($C x 1 sh -c 'cat /run/resource-agents/xpp*.pid')
T=$(now); $C x 1 kill -9 "$pid"
wait_for 30 "node2 holds the device" holds 2
t_dev=$(el $T)
sleep 1
wait_for 60 "one promoted node with the device" settled
echo "4. node1's xppd killed: node2's spans up after ${t_dev}s; settled with $SETTLED promoted after $(el $T)s"
wait_for 10 "the call carries audio" call_up
wait_for 30 "both instances running" sh -c "[ \$($C x 1 crm_resource -r xpp-clone --locate 2>/dev/null | grep -c 'running on') = 2 ]"
echo "   both instances up again, call kept, audio through the bridge: $(emu status)"
[ "$SETTLED" = node1 ] && TARGET=node2 || TARGET=node1

# ---- 5. move the promoted role to the other node while the device is where it is
T=$(now); $C x 1 crm_resource --move --promoted -r xpp-clone -N $TARGET >/dev/null 2>&1
wait_for 30 "$TARGET holds the device" holds ${TARGET#node}
wait_for 30 "$TARGET promoted" is_promoted 1 ${TARGET#node}
echo "5. move --promoted $TARGET: $TARGET promoted with the device after $(el $T)s"
[ "$SETTLED" = node1 ] && o=1 || o=2
holds $o && fail "node$o still holds the device"
$C x 1 crm_resource --clear -r xpp-clone >/dev/null 2>&1
wait_for 10 "the call carries audio" call_up
if [ -n "${XPP_CLUSTER_VERBOSE:-}" ]; then
  for n in 1 2; do echo "--- node$n xppd.log"; $C x $n cat /run/xpp/xppd.log; done
  grep -h "xpp" "$BASE"/node*/var-log-pacemaker/pacemaker.log | grep -E "Result of|Initiating" | tail -n 40
fi
echo "PASS"

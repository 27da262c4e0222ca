#!/bin/bash
# Two-node Pacemaker + Corosync cluster on one host, each node in its own
# network + mount + UTS + PID namespace, joined by a private veth pair.
# Usage: pcmk-netns.sh setup | start N | startall | x N CMD... | killnode N
#                      | wait_online N [timeout] | promoted_on N RSC | cleanup
# Env: BASE (state dir, default /tmp/pcmk-ci), TOKEN (corosync token ms, default
#      corosync's 3000), DC_DEADTIME (default 2s), CLUSTER (default citest)
set -u
BASE=${BASE:-/tmp/pcmk-ci}
TOKEN=${TOKEN:-}
CLUSTER=${CLUSTER:-citest}
NODES="1 2"

node_dir()   { echo "$BASE/node$1"; }
anchor_pid() { cat "$BASE/node$1/anchor.pid" 2>/dev/null; }

# run a command inside node N (all of its namespaces)
x() { local n=$1; shift; nsenter -t "$(anchor_pid "$n")" -n -m -u -p --wd=/ "$@"; }

setup() {
  mkdir -p "$BASE"
  for n in $NODES; do
    ip netns add pcmk$n
    ip -n pcmk$n link set lo up
    ip netns exec pcmk$n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  # the veth pair is created directly inside the two namespaces: nothing in the root netns
  ip link add veth1 netns pcmk1 type veth peer name veth2 netns pcmk2
  ip -n pcmk1 addr add 10.77.0.1/24 dev veth1
  ip -n pcmk2 addr add 10.77.0.2/24 dev veth2
  ip -n pcmk1 link set veth1 up
  ip -n pcmk2 link set veth2 up

  corosync-keygen -k "$BASE/authkey" >/dev/null     # one key, copied to both nodes
  mkdir -p /var/log/corosync                        # bind-mount target (the package creates it)

  for n in $NODES; do
    local D; D=$(node_dir $n)
    mkdir -p $D/etc-corosync/uidgid.d $D/var-lib-corosync $D/var-log-corosync \
             $D/var-lib-pacemaker/{cib,pengine,blackbox,cores} $D/var-log-pacemaker/bundles
    chown -R hacluster:haclient $D/var-lib-pacemaker $D/var-log-pacemaker
    chmod 750 $D/var-lib-pacemaker/*
    chmod 770 $D/var-log-pacemaker
    install -m 0400 "$BASE/authkey" $D/etc-corosync/authkey

    # seed CIB: no fencing, ignore quorum loss, short dc-deadtime (default 20s delays the first DC)
    # no crm_feature_set attribute: a value newer than the daemons' (3.16.1 in 2.1.5) breaks the node
    cat > $D/var-lib-pacemaker/cib/cib.xml <<XML
<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="cib-bootstrap-options-no-quorum-policy" name="no-quorum-policy" value="ignore"/>
        <nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="${DC_DEADTIME:-2s}"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
XML
    chown hacluster:haclient $D/var-lib-pacemaker/cib/cib.xml
    chmod 0600 $D/var-lib-pacemaker/cib/cib.xml

    cat > $D/etc-corosync/corosync.conf <<EOF
totem {
    version: 2
    cluster_name: $CLUSTER
    transport: knet
    crypto_cipher: aes256
    crypto_hash: sha256
${TOKEN:+    token: $TOKEN}
}
nodelist {
    node {
        name: node1
        nodeid: 1
        ring0_addr: 10.77.0.1
    }
    node {
        name: node2
        nodeid: 2
        ring0_addr: 10.77.0.2
    }
}
quorum {
    provider: corosync_votequorum
    two_node: 1
}
logging {
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: on
}
EOF

    # PID 1 of the node's PID namespace; it holds the mount and UTS namespaces and,
    # being bash, reaps the daemons that get re-parented to it.
    cat > $D/init.sh <<EOF
set -e
mount --bind $D/etc-corosync      /etc/corosync
mount --bind $D/var-lib-corosync  /var/lib/corosync
mount --bind $D/var-log-corosync  /var/log/corosync
mount --bind $D/var-lib-pacemaker /var/lib/pacemaker
mount --bind $D/var-log-pacemaker /var/log/pacemaker
# fresh /run at every node start (Stateful keeps its role in /run/Stateful-<rsc>.state)
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/crm /run/lock /run/resource-agents
chown hacluster:haclient /run/crm; chmod 750 /run/crm; chmod 1777 /run/lock
# private /dev/shm: libqb shared-memory IPC files, named after (namespace-local) PIDs
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
hostname node$n
set +e
while :; do sleep 1; done
EOF
  done
}

start() {
  local n=$1 D c=; D=$(node_dir $n)
  ip netns exec pcmk$n unshare --mount --uts --pid --fork --mount-proc bash $D/init.sh \
      </dev/null >$D/init.log 2>&1 &
  local up=$!                                   # `ip netns exec` execs unshare: this is unshare's PID
  for i in $(seq 50); do
    c=$(awk '{print $1}' /proc/$up/task/$up/children 2>/dev/null); [ -n "$c" ] && break; sleep 0.1
  done
  echo "$c" > $D/anchor.pid                     # host PID of the namespace's PID 1
  for i in $(seq 50); do                        # wait for init.sh's mounts
    x $n sh -c "test \"\$(hostname)\" = node$n && mountpoint -q /dev/shm" && break; sleep 0.1
  done
  x $n corosync                                 # daemonises; pid file /run/corosync.pid
  x $n env PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
      setsid pacemakerd </dev/null >>$D/pacemakerd.out 2>&1 &
}

# hard node failure: SIGKILL to PID 1 of the node's PID namespace kills everything in it
killnode() { kill -9 "$(anchor_pid $1)"; }

wait_online() {   # wait_online OBSERVER [timeout_s]: both nodes online as seen from OBSERVER
  local end=$(( $(date +%s) + ${2:-120} ))
  while [ $(date +%s) -lt $end ]; do
    x $1 crm_mon -1 2>/dev/null | grep -q "Online: \[ node1 node2 \]" && return 0; sleep 0.2
  done; return 1
}

promoted_on() {   # promoted_on OBSERVER RSC: prints node name(s) where RSC is promoted
  x $1 crm_resource -r "$2" --locate 2>/dev/null | awk '/ Promoted$/{print $(NF-1)}'
}

cleanup() {
  for n in $NODES; do a=$(anchor_pid $n); [ -n "$a" ] && kill -9 "$a" 2>/dev/null; done
  sleep 1
  ip netns del pcmk1 2>/dev/null; ip netns del pcmk2 2>/dev/null
  rm -rf "$BASE"
}

cmd=$1; shift
case $cmd in
  setup|start|x|killnode|wait_online|promoted_on|cleanup) $cmd "$@" ;;
  startall) for n in $NODES; do start $n; done ;;
  *) echo "usage: $0 setup|start N|startall|x N CMD...|killnode N|wait_online N|promoted_on N RSC|cleanup" >&2; exit 2 ;;
esac

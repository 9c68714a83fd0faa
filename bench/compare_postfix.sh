#!/usr/bin/env bash
# Postfix vs relaygate on this machine, in the same run, relaying ~1 KB messages without DKIM.
#
#   bench/compare_postfix.sh [MESSAGES=20000] [SESSIONS=20]
#
# Postfix: a throwaway instance (its own config, queue and data directories in a temp dir; started
# with `postfix -c DIR`, nothing else of the system's Postfix is touched or needed running),
# listening on 127.0.0.1:<free port>, relayhost = [127.0.0.1]:<smtp-sink port>, no local
# delivery. smtp-source -> postfix -> smtp-sink; the rate is messages / (first connection ->
# last message counted by smtp-sink).
# relaygate: bench/e2e.py --variants nosign (HTTP in; relaygate's SMTP listener is not part of
# `serve` yet) -> MX path -> aiosmtpd discard sink. Same message count.
# Installs nothing: needs postfix, smtp-source and smtp-sink (Debian package postfix) and the
# project venv. Prints one JSON line. Loopback only.
set -euo pipefail
N=${1:-20000}
SESSIONS=${2:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-$HERE/../.venv/bin/python}
for tool in postfix smtp-source smtp-sink postconf; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
    echo "{\"bench\": \"compare_postfix\", \"error\": \"$tool not installed (Debian package postfix)\"}"
    exit 0
  fi
done
export PATH=$PATH:/usr/sbin
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
TMP=$(mktemp -d /tmp/rg-postfix.XXXXXX)
PF_PORT=$(free_port)
SINK_PORT=$(free_port)
SINK_PID=""
cleanup() {
  postfix -c "$TMP/etc" stop >/dev/null 2>&1 || true
  if [ -n "$SINK_PID" ]; then kill "$SINK_PID" 2>/dev/null || true; wait "$SINK_PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
chmod 755 "$TMP"
mkdir -p "$TMP/etc" "$TMP/spool" "$TMP/data"
chown postfix "$TMP/data"
cat > "$TMP/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $TMP/spool
data_directory = $TMP/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK_PORT
smtpd_relay_restrictions = permit_mynetworks, reject
local_transport = error:no local delivery here
alias_maps =
alias_database =
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file = $TMP/postfix.log
maillog_file_prefixes = /tmp
smtp_host_lookup = native
disable_dns_lookups = yes
EOF
cat > "$TMP/etc/master.cf" <<EOF
127.0.0.1:$PF_PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
EOF
postfix -c "$TMP/etc" check >/dev/null 2>&1 || true
smtp-sink -c -u postfix "127.0.0.1:$SINK_PORT" 256 > "$TMP/sink.out" 2>&1 &
SINK_PID=$!
postfix -c "$TMP/etc" start >/dev/null 2>&1
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PF_PORT") 2>/dev/null && break
  sleep 0.1
done
sink_count() { tr '\r' '\n' < "$TMP/sink.out" | grep -Eo 'mesg=[0-9]+' | tail -1 | cut -d= -f2 || true; }
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s.%N)
smtp-source -s "$SESSIONS" -l 1024 -m "$N" -f bench@bench.test -t r@dest.bench.test "127.0.0.1:$PF_PORT"
T_ACCEPTED=$(date +%s.%N)
DEADLINE=$(( $(date +%s) + 600 ))
while :; do
  C=$(sink_count); C=${C:-0}
  [ "$C" -ge "$N" ] && break
  [ "$(date +%s)" -ge "$DEADLINE" ] && break
  sleep 0.05
done
T_DONE=$(date +%s.%N)
PF_DELIVERED=${C:-0}
postfix -c "$TMP/etc" stop >/dev/null 2>&1 || true
RG_JSON=$("$PY" "$HERE/e2e.py" --messages "$N" --variants nosign)
"$PY" - "$N" "$T0" "$T_ACCEPTED" "$T_DONE" "$PF_DELIVERED" "$LOAD_BEFORE" "$RG_JSON" <<'EOF'
import json, sys
n, t0, t_acc, t_done, delivered = int(sys.argv[1]), *map(float, sys.argv[2:5]), int(sys.argv[5])
load_before = [float(x) for x in sys.argv[6].split()]
rg = json.loads(sys.argv[7])["nosign"]
pf_rate = delivered / (t_done - t0)
print(json.dumps({
    "bench": "compare_postfix",
    "messages": n,
    "postfix": {
        "accept_per_s": round(n / (t_acc - t0), 1),
        "e2e_per_s": round(pf_rate, 1),
        "delivered": delivered,
        "path": "smtp-source -> postfix (smtpd, cleanup, qmgr, smtp) -> smtp-sink",
    },
    "relaygate": {
        "accept_per_s": rg["accept_per_s"],
        "e2e_per_s": rg["e2e_per_s"],
        "delivered": rg["delivered"],
        "peak_rss_mb": rg["peak_rss_mb"],
        "path": "HTTP /v1/send -> relaygate (no DKIM) -> MX -> aiosmtpd sink",
    },
    "ratio_relaygate_to_postfix": round(rg["e2e_per_s"] / pf_rate, 3) if pf_rate else None,
    "loadavg_before": load_before,
}))
EOF

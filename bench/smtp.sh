#!/usr/bin/env bash
# SMTP submission throughput: smtp-source (Debian's postfix package) against `relaygate serve`
# on an ephemeral loopback port, trusted network 127.0.0.0/8 → the bench account.
# Prints one JSON line: {"msgs", "seconds", "msg_per_s", "durable", ...}.
# Usage: bench/smtp.sh [sessions=20] [messages=20000] [bytes=1024]   (ROLES=smtp,relay to include delivery)
# Without smtp-source it runs the Python fallback bench/smtp_load.py.
set -euo pipefail
SESSIONS=${1:-20}
MESSAGES=${2:-20000}
BYTES=${3:-1024}
ROLES=${ROLES:-smtp}
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
DIR=$(mktemp -d /tmp/relaygate-bench-smtp.XXXXXX)
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT

cat > "$DIR/relaygate.toml" <<TOML
state_dir = "$DIR/state"
hostname = "relay.test"
log_level = "warning"
[http]
listen = "127.0.0.1:0"
[smtp]
listen = ["127.0.0.1:0"]
trusted_networks = {"127.0.0.0/8" = 1}
[delivery]
mode = "capture"
capture_dir = "$DIR/capture"
[dns]
nameservers = ["127.0.0.1:1"]
TOML
RG=("$PY" -m relaygate --config "$DIR/relaygate.toml")
"${RG[@]}" init >/dev/null
"${RG[@]}" account create bench --plan paid --daily-quota 100000000 --rate-limit 1000000 >/dev/null
"${RG[@]}" identity add --account 1 example.com --verified >/dev/null
ROLE_ARGS=()
IFS=, read -ra R <<<"$ROLES"; for r in "${R[@]}"; do ROLE_ARGS+=(--role "$r"); done
"${RG[@]}" serve "${ROLE_ARGS[@]}" >"$DIR/serve.log" 2>&1 &
PID=$!
for _ in $(seq 200); do [ -s "$DIR/state/run/ready.json" ] && break; sleep 0.05; done
PORT=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["smtp"][0].rsplit(":",1)[1])' "$DIR/state/run/ready.json")

if command -v smtp-source >/dev/null; then
  TOOL=smtp-source
  START=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$BYTES" -f app@example.com -t r@dest.test \
    -M client.test "127.0.0.1:$PORT"
  END=$(date +%s.%N)
else
  TOOL=smtp_load.py
  START=$(date +%s.%N)
  "$PY" "$HERE/bench/smtp_load.py" --port "$PORT" --sessions "$SESSIONS" --messages "$MESSAGES" --bytes "$BYTES" >/dev/null
  END=$(date +%s.%N)
fi
kill -TERM "$PID"; wait "$PID" || true
"$PY" - "$DIR/state/relaygate.sqlite3" "$MESSAGES" "$START" "$END" "$TOOL" "$SESSIONS" "$BYTES" "$ROLES" <<'PYEOF'
import json, sqlite3, sys
db, msgs, start, end, tool, sessions, size, roles = sys.argv[1:]
durable = sqlite3.connect(db).execute("SELECT COUNT(*) FROM messages WHERE channel = 'smtp'").fetchone()[0]
seconds = float(end) - float(start)
print(json.dumps({"bench": "smtp", "tool": tool, "sessions": int(sessions), "bytes": int(size),
                  "roles": roles, "msgs": int(msgs), "durable": durable,
                  "seconds": round(seconds, 3), "msg_per_s": round(durable / seconds, 1)}))
PYEOF

#!/usr/bin/env bash
# identity's figures for docs/benchmarks.md, in one run on this machine:
#   token verification cost, argon2id logins per second per core, and the throughput of
#   GetKeySet and WhoAmI (a real token through the full stack) next to the bare echo server.
# Uses a scratch database on the local PostgreSQL and Redis (scripts/ensure-services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
cargo build --release --quiet -p work4life -p work4life-bench
bench=target/release/work4life-bench
bin=target/release/work4life
db="postgres://postgres@127.0.0.1:5432/w4l_bench_$$"
port=$((50100 + RANDOM % 400))
args=(--connections 4 --concurrency 64 --duration "${DURATION:-5}")

$bench verify
$bench argon2

password=$(W4L_DATABASE_URL=$db W4L_LOG=warn $bin bootstrap-admin --email bench@work4life.local | sed -n 's#.* / \([^ ]*\) .*#\1#p')
W4L_DATABASE_URL=$db W4L_LOG=warn W4L_LISTEN_ADDR=127.0.0.1:$port $bin --target=identity serve >/dev/null &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS w4l_bench_$$" >/dev/null' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
token=$(python3 - "$port" "$password" <<'PY'
import json, subprocess, sys
port, password = sys.argv[1], sys.argv[2]
out = subprocess.run(["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "-d",
    json.dumps({"email": "bench@work4life.local", "password": password}),
    f"http://127.0.0.1:{port}/work4life.identity.v1.IdentityService/Login"], capture_output=True, text=True, check=True)
print(json.loads(out.stdout)["tokens"]["accessToken"])
PY
)
# The bare baseline on the same threads as the identity process (tokio's default: one per core).
$bench serve --mode bare --threads "$(nproc)" > /tmp/w4l-bare-$$.json &
bare=$!
trap 'kill $server $bare 2>/dev/null; wait $server $bare 2>/dev/null; psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS w4l_bench_$$" >/dev/null; rm -f /tmp/w4l-bare-$$.json' EXIT
for _ in $(seq 1 50); do [ -s /tmp/w4l-bare-$$.json ] && break; sleep 0.1; done
bare_addr=$(python3 -c "import json,sys; print(json.load(open('/tmp/w4l-bare-$$.json'))['addr'])")
$bench load --addr "$bare_addr" "${args[@]}" | sed 's/^load/bare echo/'
kill $bare
$bench load --rpc get-key-set --addr "http://127.0.0.1:$port" "${args[@]}" | sed 's/^load/GetKeySet/'
$bench load --rpc who-am-i --addr "http://127.0.0.1:$port" --token "$token" "${args[@]}" | sed 's/^load/WhoAmI/'

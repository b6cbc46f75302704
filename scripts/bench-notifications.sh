#!/usr/bin/env bash
# notifications' figures for docs/benchmarks.md ("Notifications (#7)"): bursts of 10,000 events
# written into intake's outbox in one transaction, measured until the SMS provider (a real HTTP
# server on loopback) has every message: events per second end to end, and the lag of each
# message from its outbox row at p50 and p99. Intake and notifications run inside the bench
# process, with a private redis-server and a scratch database (w4l_bench_notifications).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
cargo build --release --quiet -p work4life-bench
target/release/work4life-bench notifications --events "${EVENTS:-10000}" --bursts "${BURSTS:-3}" --people "${PEOPLE:-1000}" 2>&1 | grep -v '^{' || true

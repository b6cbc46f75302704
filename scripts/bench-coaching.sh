#!/usr/bin/env bash
# coaching's figures for docs/benchmarks.md (#6), in one run on this machine:
#   ScheduleSession at 32 callers, all booking the same coach in the same room (4 overlapping
#   attempts per hour: exactly one may win, the others are refused ALREADY_EXISTS DOUBLE_BOOKED),
#   then the same load spread over 200 coaches in the offices' 10 rooms with no conflict;
#   GetProgress of one engagement and of a cohort (window, zone, office) on 10,000 engagements
#   and 500,000 sessions, at 1 caller (latency) and at 32 (throughput).
# The service runs inside work4life-bench (host::start, scratch databases w4l_bench_coaching_* on
# the local PostgreSQL, a private redis-server for its outbox relay and award consumer). The
# progress fixture is kept between runs (--reuse); drop it with:
#   psql -c 'DROP DATABASE w4l_bench_coaching_10000_500000'
# Extra arguments go to every scenario; DURATION and ROUNDS override the defaults (10 s, 3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
cargo build --release --quiet -p work4life-bench
bench=target/release/work4life-bench
args=(--duration "${DURATION:-10}" --rounds "${ROUNDS:-3}")

$bench coaching --scenario schedule-hot --concurrency 32 "${args[@]}" "$@"
$bench coaching --scenario schedule-spread --concurrency 32 --coaches 200 "${args[@]}" "$@"
$bench coaching --scenario progress --engagements 10000 --sessions 500000 --reuse --concurrency 1 "${args[@]}" "$@"
$bench coaching --scenario progress --engagements 10000 --sessions 500000 --reuse --concurrency 32 "${args[@]}" "$@"

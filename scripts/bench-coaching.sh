#!/usr/bin/env bash
# coaching's figures for docs/benchmarks.md (#6), in one run on this machine:
#   ScheduleSession at 32 callers, all booking the same coach in the same room (4 overlapping
#   attempts per hour: exactly one may win, the others are refused ALREADY_EXISTS DOUBLE_BOOKED),
#   and the same load spread over 200 coaches in the offices' 10 rooms with no conflict, in
#   alternating rounds, each on its own database and host, with their ratios;
#   GetProgress of one engagement and of a cohort (window, zone, office) on 10,000 engagements
#   and 500,000 sessions: every call at 1 caller (latency), one engagement at 32 callers and the
#   cohorts at 4 (throughput).
# The service runs inside work4life-bench (host::start, scratch databases w4l_bench_coaching_* on
# the local PostgreSQL, a private redis-server for its outbox relay and award consumer). The
# progress fixture is kept between runs (--reuse); drop it with:
#   psql -c 'DROP DATABASE w4l_bench_coaching_10000_500000'
# Extra arguments go to every scenario; DURATION and ROUNDS override the defaults (10 s, 3 rounds;
# the cohort reports take seconds each, so they get twice DURATION).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
cargo build --release --quiet -p work4life-bench
bench=target/release/work4life-bench
args=(--duration "${DURATION:-10}" --rounds "${ROUNDS:-3}")

long=$(( ${DURATION:-10} * 2 ))
progress=(--scenario progress --engagements 10000 --sessions 500000 --reuse --rounds "${ROUNDS:-3}")

$bench coaching --scenario schedule --concurrency 32 --coaches 200 "${args[@]}" "$@"
$bench coaching "${progress[@]}" --concurrency 1 --duration "$long" "$@"
$bench coaching "${progress[@]}" --concurrency 32 --duration "${DURATION:-10}" --cohorts engagement "$@"
$bench coaching "${progress[@]}" --concurrency 4 --duration "$long" --cohorts window zone office "$@"

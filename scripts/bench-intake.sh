#!/usr/bin/env bash
# intake's figures for docs/benchmarks.md, in one run on this machine:
#   CreateApplicant and SubmitApplication over real gRPC at 32 callers, each next to pgbench
#   running the same SQL (scripts/bench/register.sql, submit.sql: -c 32 -j 2) against the same
#   database, in alternating rounds, and their throughput ratios;
#   ListApplicants (plain, zone filter, name prefix, phone) p50 and p99 on registries of 1,000
#   and 1,000,000 people, measured in turn in the same run.
# The service runs inside work4life-bench (host::start, scratch databases w4l_bench_intake_<N>
# on the local PostgreSQL, outbox relayed to Redis database 9). The 1,000,000-person registry is
# kept between runs (--reuse); drop it with: psql -c 'DROP DATABASE w4l_bench_intake_1000000'.
# Extra arguments go to every scenario (for example --nodelay); DURATION and ROUNDS override the
# defaults (10 s, 3 rounds).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
command -v pgbench >/dev/null || { echo "pgbench is missing (Debian: apt-get install postgresql-client)" >&2; exit 1; }
cargo build --release --quiet -p work4life-bench
bench=target/release/work4life-bench
args=(--duration "${DURATION:-10}" --rounds "${ROUNDS:-3}" --concurrency 32)

$bench intake --scenario register "${args[@]}" "$@"
$bench intake --scenario submit "${args[@]}" "$@"
$bench intake --scenario list --applicants 1000 1000000 --reuse "${args[@]}" "$@"
# The relay's stream in the bench's Redis database.
if command -v redis-cli >/dev/null; then redis-cli -n 9 DEL w4l:events:intake >/dev/null; fi

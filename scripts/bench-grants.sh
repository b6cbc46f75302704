#!/usr/bin/env bash
# grants' figures for docs/benchmarks.md ("Grants (#5)"), in one run on this machine: CreateAward
# on one hot line and spread over 50 lines, maker-checker disbursements and payment batches, and
# the donor's report on 100,000 awards and about 1,000,000 postings (that fixture is kept in
# w4l_bench_grants_report_100000 and reused when its migrations have not changed).
# The grants service runs inside the bench process, with a private redis-server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-services.sh >/dev/null
cargo build --release --quiet -p work4life-bench
bench=target/release/work4life-bench
quiet() { grep -v '^{' || true; }   # the in-process service's JSON logs
$bench grants --scenario award-hot --duration "${DURATION:-10}" --rounds "${ROUNDS:-3}" 2>&1 | quiet
$bench grants --scenario award-spread --duration "${DURATION:-10}" --rounds "${ROUNDS:-3}" 2>&1 | quiet
$bench grants --scenario disburse 2>&1 | quiet
$bench grants --scenario report --reuse ${EXPLAIN:+--explain} 2>&1 | quiet

#!/usr/bin/env bash
# Regenerates .sqlx/ (the compile-time query data that lets every build run with SQLX_OFFLINE=true).
# The platform's queries are schema-agnostic (they run in each service's schema through its
# search_path), so they are checked against a scratch database with the platform tables in public.
#   scripts/sqlx-prepare.sh           rewrite .sqlx/
#   scripts/sqlx-prepare.sh --check   fail if .sqlx/ is not what the code needs (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
admin=${W4L_SQLX_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=work4life_sqlx_$$
# Service tables live in their own schemas; the macros see them all through this search_path
# (platform tables in public first). Services must therefore not reuse each other's table names.
url="${admin%/*}/$db?options=-c%20search_path%3Dpublic%2Cidentity%2Cintake%2Cgrants%2Ccoaching%2Cnotifications"
plain_url=${admin%/*}/$db
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null' EXIT
for f in crates/platform/migrations/*.sql; do psql -q -v ON_ERROR_STOP=1 "$plain_url" -f "$f" >/dev/null; done
for s in services/*/; do
  name=$(basename "$s")
  [ -d "$s/migrations" ] || continue
  ls "$s"/migrations/*.sql >/dev/null 2>&1 || continue
  psql -q -v ON_ERROR_STOP=1 "$plain_url" -c "CREATE SCHEMA IF NOT EXISTS $name" >/dev/null
  for f in "$s"/migrations/*.sql; do PGOPTIONS="-c search_path=$name" psql -q -v ON_ERROR_STOP=1 "$plain_url" -f "$f" >/dev/null; done
done
out=.sqlx
[ "${1:-}" = "--check" ] && out=$(mktemp -d)
rm -rf "${out:?}"/query-*.json
mkdir -p "$out"
# Touch the crates with queries so the macros run again, then type-check everything online.
find crates services -name '*.rs' -path '*/src/*' -exec grep -l 'sqlx::query[_a-z]*!' {} + | xargs -r touch
case $out in /*) dir=$out ;; *) dir=$PWD/$out ;; esac
DATABASE_URL=$url SQLX_OFFLINE=false SQLX_OFFLINE_DIR=$dir cargo check --workspace --all-targets --quiet
if [ "${1:-}" = "--check" ]; then
  if ! diff -r -q .sqlx "$out"; then
    echo "sqlx offline data is stale: run scripts/sqlx-prepare.sh and commit .sqlx/" >&2
    exit 1
  fi
  echo "sqlx offline data is up to date"
fi

#!/usr/bin/env bash
# The contract gate: formatting, lint (STANDARD), and breaking changes against the previous
# commit of main (once that commit has protos). A shallow clone without the previous commit
# skips the breaking check and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
buf format --diff --exit-code
buf lint
buf build -o /dev/null
base=${W4L_BUF_AGAINST:-HEAD~1}
if ! git rev-parse --verify -q "$base^{commit}" >/dev/null; then
  echo "buf breaking: skipped ($base is not in this clone)"
  exit 0
fi
if ! git cat-file -e "$base:buf.yaml" 2>/dev/null; then
  echo "buf breaking: skipped ($base has no protos yet)"
  exit 0
fi
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$base" buf.yaml proto third_party | tar -x -C "$old"
buf breaking --against "$old"
echo "buf breaking: no breaking change against $(git rev-parse --short "$base")"

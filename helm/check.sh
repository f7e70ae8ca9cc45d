#!/usr/bin/env bash
# The chart's static checks, as CI runs them: helm lint --strict, helm template for the default
# values and for every helm/examples/values-*.yaml (and once more with the optional CRD kinds),
# and every rendered manifest validated against the Kubernetes API schemas (offline) with
# kubernetes-validate --strict. Needs helm and kubernetes-validate on PATH; the wiring of the
# rendered chart to the binaries is tested by helm/tests/test_wiring.py.
#
#   eval "$(../shared/tools/install-helm.sh)"; pip install kubernetes-validate; bash helm/check.sh
set -euo pipefail
cd "$(dirname "$0")"
K8S_VERSION=${K8S_VERSION:-1.30.0}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

examples=(examples/values-*.yaml)
# The optional kinds that need CRDs: rendered only when the cluster has them.
crds=(--api-versions monitoring.coreos.com/v1/ServiceMonitor
      --api-versions monitoring.coreos.com/v1/PodMonitor
      --api-versions keda.sh/v1alpha1/ScaledObject)

echo "-- helm lint --strict"
helm lint --strict stampede
for f in "${examples[@]}"; do
    helm lint --strict stampede -f "$f" >/dev/null || { helm lint --strict stampede -f "$f"; exit 1; }
done

echo "-- helm template"
render() {
    local name=$1
    shift
    helm template stampede stampede --namespace load "$@" >"$out/$name.yaml"
    echo "$name: $(grep -c '^kind:' "$out/$name.yaml") manifests"
}
render default
for f in "${examples[@]}"; do
    render "$(basename "$f" .yaml)" -f "$f"
    render "$(basename "$f" .yaml)-crds" -f "$f" "${crds[@]}"
done
render interactive-crds --set master.mode=deployment "${crds[@]}" --set worker.keda.enabled=true
# A CA for https:// targets, from a Secret, in the master and helm test pods.
render target-ca --set targetTls.caSecret=shop-ca --set master.mode=deployment

echo "-- kubernetes-validate --strict -k $K8S_VERSION"
# kubernetes-validate bundles the schemas of Kubernetes' own kinds only: the CRD kinds above
# (ServiceMonitor, PodMonitor, ScaledObject) are set aside here, by name, and their wiring is
# checked by helm/tests/test_wiring.py. Any other kind without a schema fails below.
python3 - "$out" <<'PY'
import pathlib, sys, yaml
skip = {"ServiceMonitor", "PodMonitor", "ScaledObject"}
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.yaml")):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    kept = [d for d in docs if d["kind"] not in skip]
    for d in docs:
        if d["kind"] in skip:
            print(f"{path.stem}: {d['kind']}/{d['metadata']['name']}: CRD kind, not validated here")
    path.write_text(yaml.safe_dump_all(kept, sort_keys=False))
PY
report=$(kubernetes-validate --strict -k "$K8S_VERSION" "$out"/*.yaml 2>&1) || {
    echo "$report"
    exit 1
}
if grep -v '^INFO' <<<"$report" | grep -q .; then
    echo "$report" | grep -v '^INFO'
    echo "kubernetes-validate reported warnings or errors" >&2
    exit 1
fi
echo "$(grep -c '^INFO.*passed' <<<"$report") manifests valid for Kubernetes $K8S_VERSION"

#!/usr/bin/env bash
# One scenario (template, diff, up, a no-op up, a change with prunes, ls, status, down) with the
# plane binary $1 against a fresh test server, its outputs and each command's requests in $2.
# tests/same-behaviour.sh runs it for two binaries and compares.
set -u
BIN=$1; OUT=$2; SRV=${PLANE_TEST_APISERVER:-target/debug/plane-test-apiserver}
rm -rf "$OUT"; mkdir -p "$OUT"
KC=$OUT/kubeconfig
$SRV --kubeconfig "$KC" --port 18643 --request-log "$OUT/requests.log" >"$OUT/server.log" 2>&1 &
SP=$!
for i in $(seq 100); do [ -f "$KC" ] && break; sleep 0.1; done
export NO_COLOR=1
unset DATALAYER_RUN_URL PLANE_ADDONS_DIR PLANE_PROFILES_DIR
run() { name=$1; shift; "$BIN" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" </dev/null; echo $? >"$OUT/$name.rc"; sleep 0.25; echo "$name $(cat "$OUT/requests.log" 2>/dev/null | wc -l)" >>"$OUT/marks"; }
run template template datalayer-ray --profile local
run template-bad template datalayer-ray --profile local --set api.replicas=-1 --set nope.x=1
run diff1 diff datalayer-ray --profile local --kubeconfig "$KC"
run diffjson1 diff datalayer-ray --profile local -o json --kubeconfig "$KC"
run updry up datalayer-ray --profile local --dry-run --kubeconfig "$KC"
run up1 up datalayer-ray --profile local --kubeconfig "$KC" --no-progress
run up2 up datalayer-ray --profile local --kubeconfig "$KC" --no-progress
run diff2 diff datalayer-ray --profile local --exit-code --kubeconfig "$KC"
run diff3 diff datalayer-ray --profile local --set api.replicas=2 --set observability.enabled=false --kubeconfig "$KC"
run diffjson3 diff datalayer-ray --profile local --set api.replicas=2 --set observability.enabled=false -o json --kubeconfig "$KC"
run up3noyes up datalayer-ray --profile local --set api.replicas=2 --set observability.enabled=false --kubeconfig "$KC" --no-progress
run up3 up datalayer-ray --profile local --set api.replicas=2 --set observability.enabled=false --yes --kubeconfig "$KC" --no-progress
run ls ls --kubeconfig "$KC"
run lsjson ls -o json --kubeconfig "$KC"
run status status --kubeconfig "$KC"
run statusjson status -o json --kubeconfig "$KC"
run downdry down datalayer-ray --dry-run --kubeconfig "$KC"
run downnoyes down datalayer-ray --kubeconfig "$KC"
run down down datalayer-ray --yes --kubeconfig "$KC" --no-progress
run down2 down datalayer-ray --yes --kubeconfig "$KC"
run helpup up --help
run helpdown down --help
run helpls ls --help
sleep 0.3; kill $SP; wait $SP 2>/dev/null
# Normalise what differs run to run: clock times, durations, timestamps, hosts, pids, uids.
for f in "$OUT"/*.out "$OUT"/*.err; do
  sed -E -i 's/^[0-9]{2}:[0-9]{2}:[0-9]{2} //; s/in [0-9]+\.[0-9]+s/in Ns/g; s/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/TIME/g; s/"uid": "[^"]*"/"uid": "U"/g; s/resourceVersion: "?[0-9]+"?/resourceVersion: RV/g; s/"resourceVersion": "[0-9]+"/"resourceVersion": "RV"/g; s/10\.96\.[0-9]+\.[0-9]+/CLUSTER-IP/g' "$f"
done
# Requests per command, as a sorted multiset (order within a command is concurrent).
prev=0
mkdir -p "$OUT/req"
while read -r name n; do
  [ "$n" -gt "$prev" ] && sed -n "$((prev+1)),${n}p" "$OUT/requests.log" | sed -E 's/resourceVersion=[0-9]+/resourceVersion=N/g' | sort >"$OUT/req/$name"; touch "$OUT/req/$name"
  prev=$n
done <"$OUT/marks"

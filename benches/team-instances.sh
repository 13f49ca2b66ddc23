#!/usr/bin/env bash
# Team instances at scale: `plane ls -A` and the platform's `plane status` with 1 and with N team
# instances (default 100) beside the platform, on the test API server, as round trips (its request
# log) and wall-clock time (median of 5 runs). Both should cost the same requests whatever the
# number of instances.
#
#   cargo build --bins && bash benches/team-instances.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
plane=${PLANE:-target/debug/plane}
srv=${PLANE_TEST_APISERVER:-target/debug/plane-test-apiserver}
work=$(mktemp -d)
export NO_COLOR=1
unset DATALAYER_RUN_URL PLANE_ADDONS_DIR PLANE_PROFILES_DIR || true

measure() { # instances
  local count=$1 dir="$work/$1" pid
  mkdir -p "$dir"
  "$srv" --kubeconfig "$dir/kc" --request-log "$dir/requests.log" >"$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -f "$dir/kc" ] && break; sleep 0.1; done
  "$plane" up datalayer-ray --profile local --no-wait --kubeconfig "$dir/kc" >/dev/null 2>&1
  for i in $(seq "$count"); do
    printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team-%s"}}\n' "$i"
  done | kubectl --kubeconfig "$dir/kc" apply --server-side -f - >/dev/null
  for i in $(seq "$count"); do
    "$plane" up datalayer-ray --profile local -n "team-$i" --no-wait --kubeconfig "$dir/kc" >/dev/null 2>&1
  done
  local row=("$count")
  for command in "ls -A" "status"; do
    local times=() before after requests start end
    for _ in 1 2 3 4 5; do
      sleep 0.3
      before=$(wc -l <"$dir/requests.log")
      start=$(date +%s%N)
      # shellcheck disable=SC2086
      "$plane" $command -o json --kubeconfig "$dir/kc" >"$dir/out.json" 2>/dev/null
      end=$(date +%s%N)
      times+=($(( (end - start) / 1000000 )))
      sleep 0.3
      after=$(wc -l <"$dir/requests.log")
      requests=$((after - before))
    done
    row+=("$requests" "$(printf '%s\n' "${times[@]}" | sort -n | sed -n 3p)")
  done
  local releases
  releases=$(python3 -c "import json; print(len(json.load(open('$dir/out.json'))['releases']))")
  printf '| %s | %s | %s | %s | %s | %s |\n' "${row[0]}" "$releases" "${row[1]}" "${row[2]}" "${row[3]}" "${row[4]}"
  kill "$pid"
}

echo "| team instances | releases | \`ls -A\` requests | \`ls -A\` ms | \`status\` requests | \`status\` ms |"
echo "|---|---|---|---|---|---|"
measure 1
measure "$n"

#!/usr/bin/env bash
# flake-hunt.sh — runs each end-to-end test binary N times on the test API server, once on an
# idle machine and once with every core busy, and prints each test's pass count.
#
# Usage: tests/flake-hunt.sh [N]            (N defaults to 20)
#   FLAKE_HUNT_BINARIES  the test binaries to run (default: every tests/server_*.rs and
#                        tests/cluster_*.rs)
#   FLAKE_HUNT_MODES     "idle loaded" (default), or one of them
#   FLAKE_HUNT_LOGS      where the output of failed runs is kept (default: a temporary folder)
#
# A test that is not N/N in a mode is a flake: read its log, then fix the product where the
# product is wrong, and the test only where it asserted a timing the product never promised.
# The live tier's real cluster is not used: PLANE_E2E_KUBECONFIG is unset for every run, so the
# cluster tier runs on the test server too.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-20}"
modes="${FLAKE_HUNT_MODES:-idle loaded}"
logs="${FLAKE_HUNT_LOGS:-$(mktemp -d)}"
mkdir -p "$logs"
binaries="${FLAKE_HUNT_BINARIES:-$(ls tests/server_*.rs tests/cluster_*.rs | xargs -n1 basename | sed 's/\.rs$//' | tr '\n' ' ')}"
unset PLANE_E2E_KUBECONFIG PLANE_E2E_LIMITED_KUBECONFIG
export CARGO_TERM_COLOR=never

# Build once; find each binary's path from cargo's own report.
declare -A exe
targets=()
for bin in $binaries; do targets+=(--test "$bin"); done
while IFS=$'\t' read -r name path; do
  exe[$name]="$path"
done < <(cargo test --no-run "${targets[@]}" --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "test" in m["target"]["kind"]:
        print(m["target"]["name"] + "\t" + m["executable"])
')

hogs=()
stop_hogs() {
  for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${hogs[@]}"; do wait "$pid" 2>/dev/null || true; done
  hogs=()
}
trap stop_hogs EXIT

tally="$logs/tally.tsv"
: >"$tally"
for mode in $modes; do
  if [ "$mode" = loaded ]; then
    for _ in $(seq "$(nproc)"); do
      (while :; do :; done) &
      hogs+=("$!")
    done
  fi
  for bin in $binaries; do
    path="${exe[$bin]:-}"
    [ -n "$path" ] || { echo "no test binary for $bin" >&2; exit 2; }
    for i in $(seq "$runs"); do
      out="$logs/$mode-$bin-$i.log"
      timeout 1200 "$path" --color never >"$out" 2>&1 || true
      # `test NAME ... ok` / `... FAILED`: one line per test and run.
      sed -n -E "s/^test (.+) \.\.\. (ok|FAILED)$/$mode\t$bin\t\1\t\2/p" "$out" >>"$tally"
      grep -q -E '^test .+ \.\.\. FAILED$' "$out" || rm -f "$out"
      printf '.' >&2
    done
    printf ' %s %s\n' "$mode" "$bin" >&2
  done
  stop_hogs
done

python3 - "$tally" "$runs" "$modes" <<'EOF'
import sys
from collections import defaultdict
tally, runs, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split()
passed = defaultdict(lambda: defaultdict(int))
seen = defaultdict(lambda: defaultdict(int))
for line in open(tally):
    mode, binary, test, result = line.rstrip("\n").split("\t")
    key = f"{binary}::{test}"
    seen[key][mode] += 1
    passed[key][mode] += result == "ok"
width = max((len(k) for k in seen), default=10)
print(f"{'test':<{width}}  " + "  ".join(f"{m:>7}" for m in modes))
flaky = 0
for key in sorted(seen):
    cells = []
    for m in modes:
        cells.append(f"{passed[key][m]:>3}/{runs:<3}")
        flaky += passed[key][m] != runs
    print(f"{key:<{width}}  " + "  ".join(cells))
print(f"{len(seen)} tests, {flaky} not {runs}/{runs} in some mode")
EOF
echo "logs of failed runs: $logs" >&2

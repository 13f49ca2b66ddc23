#!/usr/bin/env bash
# Does a change keep plane's behaviour? Runs tests/scenario.sh with two plane binaries (say one
# built from main and one from a branch) and compares their outputs and exit codes, and each
# command's requests to the test server as a multiset. What varies run to run is set aside:
# clock times, durations, uids, resourceVersions, ClusterIPs, the order in which concurrent
# writes and readiness finish (lines are compared sorted, readiness counters dropped), and how
# many times concurrent lookups of one API group race to discover it before the first answer is
# cached (discovery requests are compared as a set), and which intermediate states a wait
# happens to observe (`waiting for ...` lines are left out; what it ends with is compared).
#
#   cargo build --bins && tests/same-behaviour.sh OLD/plane target/debug/plane
set -u
cd "$(dirname "$0")/.."
old=$1 new=$2
work=$(mktemp -d)
bash tests/scenario.sh "$old" "$work/old"
bash tests/scenario.sh "$new" "$work/new"
status=0
for f in "$work"/old/*.out "$work"/old/*.err "$work"/old/*.rc "$work"/old/req/*; do
  rel=${f#"$work"/old/}
  norm() {
    sed -E 's/ready [0-9]+\//ready N\//' "$1" | grep -v '^  waiting for ' | sort |
      awk '!((/^GET \/api(\/v1)? [0-9]+$/ || /^GET \/apis(\/[^\/ ]+)?(\/[^\/ ]+)? [0-9]+$/) && seen[$0]++)'
  }
  same() { diff <(norm "$1") <(norm "$2"); }
  if ! same "$f" "$work/new/$rel" >/dev/null; then
    echo "== $rel differs"
    same "$f" "$work/new/$rel" | head -20
    status=1
  fi
done
[ $status = 0 ] && echo "same outputs, exit codes and requests (outputs in $work)"
exit $status

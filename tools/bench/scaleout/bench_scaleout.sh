#!/usr/bin/env bash
# Sharded rebuild of the bundled sample: wall time unsharded and with N shards (all shards of a
# round started at once, as a cluster would; then `lvmflow merge`, then the rest), the merge's
# share of it, and the per-chunk costs the projection in docs/scale-out.md uses.
#   bash tools/bench/scaleout/bench_scaleout.sh [SHARD_COUNTS...]   (default: 1 2 4)
# Extra lvmflow options (e.g. --set vectors.model=/path/to/gtr-t5-base) via LVMFLOW_ARGS.
set -euo pipefail
cd "$(dirname "$0")/../../.."
lvmflow=${LVMFLOW:-build/lvmflow}
pipeline=tools/bench/scaleout/sample_rebuild.yaml
counts=("${@:-1 2 4}")
read -r -a counts <<<"${counts[*]}"
extra=(${LVMFLOW_ARGS:-})
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
metric() {   # metric STORE STAGE NAME: the value in the store's newest run
  "$lvmflow" show last --store "$1" --json | python3 -c '
import json, sys
run = json.load(sys.stdin)
for m in run.get("metrics", []):
    if m["stage"] == sys.argv[1] and m["name"] == sys.argv[2]:
        print(m["value"]); break
else:
    print(0)' "$2" "$3"
}

t0=$(now)
"$lvmflow" run "$pipeline" --quiet --store "$work/unsharded" "${extra[@]}"
unsharded=$(echo "$(now) - $t0" | bc)
chunks=$(metric "$work/unsharded" vectors cache_misses)
encode_s=$(metric "$work/unsharded" vectors encode_seconds)

printf '%-8s %10s %12s %10s %10s %10s %12s\n' shards wall_s slowest_s merge_s rest_s merge_% chunks/shard
printf '%-8s %10.2f %12s %10s %10s %10s %12s\n' none "$unsharded" - - - - "$chunks"
for n in "${counts[@]}"; do
  store="$work/sharded-$n"
  t0=$(now)
  pids=()
  for ((i = 0; i < n; i++)); do
    "$lvmflow" run "$pipeline" --quiet --store "$store" --shard "$i/$n" "${extra[@]}" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now)
  "$lvmflow" merge "$pipeline" --quiet --store "$store" --shards "$n" "${extra[@]}"
  t2=$(now)
  "$lvmflow" run "$pipeline" --quiet --store "$store" "${extra[@]}"
  t3=$(now)
  most=0
  for ((i = 0; i < n; i++)); do
    c=$(metric "$store/shards/$i-of-$n" vectors cache_misses)
    most=$(python3 -c "print(max($most, int(float('$c'))))")
  done
  shards_s=$(echo "$t1 - $t0" | bc)
  merge_s=$(echo "$t2 - $t1" | bc)
  rest_s=$(echo "$t3 - $t2" | bc)
  wall=$(echo "$t3 - $t0" | bc)
  printf '%-8s %10.2f %12.2f %10.2f %10.2f %9.1f%% %12s\n' "$n" "$wall" "$shards_s" "$merge_s" "$rest_s" \
    "$(echo "100 * $merge_s / $wall" | bc -l)" "$most"
done
echo "(unsharded: $chunks chunks, encoder busy ${encode_s}s = $(python3 -c "print(f'{1000*$encode_s/max(1,$chunks):.2f}')") ms/chunk;" \
     "slowest_s: all shards started together until the last one ended; merge_%: merge / wall)"

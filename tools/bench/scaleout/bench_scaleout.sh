#!/usr/bin/env bash
# Sharded rebuild of the bundled sample: wall time unsharded and with N shards (all shards of a
# round started at once, as a cluster would; then `lvmflow merge`, then the rest), the merge's
# share of it, and the per-chunk costs the projection in docs/scale-out.md uses.
#   bash tools/bench/scaleout/bench_scaleout.sh [SHARD_COUNTS...]   (default: 1 2 4)
# Extra lvmflow options via LVMFLOW_ARGS. The pipeline encodes with encode.hashed; for GTR-T5 make
# its vectors stage `type: encode.gtr_t5` with `model: /path/to/gtr-t5-base`.
set -euo pipefail
cd "$(dirname "$0")/../../.."
lvmflow=${LVMFLOW:-build/lvmflow}
pipeline=tools/bench/scaleout/sample_rebuild.yaml
counts=("${@:-1 2 4}")
read -r -a counts <<<"${counts[*]}"
extra=(${LVMFLOW_ARGS:-})
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/lvmflow.log"   # the runs' own summary lines

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
"$lvmflow" run "$pipeline" --quiet --store "$work/unsharded" "${extra[@]}" 2>>"$log"
unsharded=$(echo "$(now) - $t0" | bc)
chunks=$(metric "$work/unsharded" vectors cache_misses)
encode_s=$(metric "$work/unsharded" vectors encode_seconds)
prefix_s=$("$lvmflow" profile last --store "$work/unsharded" --json | python3 -c "
import json, sys
print(sum(s['busy_s'] for s in json.load(sys.stdin)['stages'] if s['stage'] in ('articles', 'chunks')))")

printf '%-8s %8s %10s %8s %9s %8s %7s %8s %13s\n' shards wall_s shards_s merge_s import_s prefix_s rest_s merge_% chunks/shard
printf '%-8s %8.2f %10s %8s %9s %8s %7s %8s %13s\n' none "$unsharded" - - - - - - "$chunks"
for n in "${counts[@]}"; do
  store="$work/sharded-$n"
  t0=$(now)
  pids=()
  for ((i = 0; i < n; i++)); do
    "$lvmflow" run "$pipeline" --quiet --store "$store" --shard "$i/$n" "${extra[@]}" 2>>"$log" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t1=$(now)
  merge_json=$("$lvmflow" merge "$pipeline" --quiet --json --store "$store" --shards "$n" "${extra[@]}" 2>>"$log")
  t2=$(now)
  "$lvmflow" run "$pipeline" --quiet --store "$store" "${extra[@]}" 2>>"$log"
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
  import_s=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['import_seconds'])" "$merge_json")
  merge_run_s=$(python3 -c "import json, sys; print(json.loads(sys.argv[1])['seconds'])" "$merge_json")
  printf '%-8s %8.2f %10.2f %8.2f %9.2f %8.2f %7.2f %7.1f%% %13s\n' "$n" "$wall" "$shards_s" "$merge_s" "$import_s" \
    "$merge_run_s" "$rest_s" "$(echo "100 * $merge_s / $wall" | bc -l)" "$most"
done
python3 - "$chunks" "$encode_s" "$prefix_s" <<'PY'
import sys
chunks, encode_s, prefix_s = int(float(sys.argv[1])), float(sys.argv[2]), float(sys.argv[3])
print(f"(unsharded: {chunks} chunks; encoder busy {encode_s:.2f} s = {1000 * encode_s / chunks:.3f} ms/chunk; "
      f"ingest + chunk busy {prefix_s:.2f} s = {1000 * prefix_s / chunks:.3f} ms/chunk.\n"
      " shards_s: all shards started at once until the last ended; merge_s: the merge process (import_s: item caches\n"
      " and run records, prefix_s: the unsharded prefix run from the item cache); rest_s: `lvmflow run` after it;\n"
      " merge_%: merge_s / wall_s; chunks/shard: the largest shard's encoded chunks)")
PY

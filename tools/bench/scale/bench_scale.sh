#!/usr/bin/env bash
# Scale benchmark (issue 11): the sample dump replicated to N chunks (tools/make_scale_dump.py)
# through ingest.wikipedia -> chunk.text -> encode.hashed (the built-in offline encoder) -> seq.window ->
# lvm.train (amn, 1 epoch) -> retrieve.index (Flat), on a fresh store per size. Prints chunks,
# cold wall time, peak RSS of the lvmflow process (/usr/bin/time), store bytes (du: hard links
# counted once), their ratios to the bytes of the encoder's vectors.npy, seconds per 1k chunks
# (linear scaling keeps it flat) and the unchanged re-run's time as a share of the cold run.
#
#   bash tools/bench/scale/bench_scale.sh                      # 48k, 190k, 760k chunks
#   bash tools/bench/scale/bench_scale.sh --sizes 5000,20000   # smaller sizes
#   bash tools/bench/scale/bench_scale.sh --work /big/disk     # where dumps and stores go
# Needs build/lvmflow (bash tools/build.sh) and about 6x the vectors' bytes of free disk.
set -euo pipefail
cd "$(dirname "$0")/../../.."
sizes="48000,190000,760000"
work="${TMPDIR:-/tmp}/lvmflow-scale"
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) sizes="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--sizes N,N,...] [--work DIR] [--keep]" >&2; exit 2 ;;
  esac
done
[ -x build/lvmflow ] || { echo "bench_scale: build/lvmflow missing; run bash tools/build.sh" >&2; exit 1; }
mkdir -p "$work"
root="$PWD"
printf "%9s %9s %9s %10s %10s %7s %7s %9s %9s\n" chunks wall_s rss_MiB store_MiB vectors_MiB rss_x store_x s_per_1k rerun_%
for n in ${sizes//,/ }; do
  dump="$work/scale-$n.xml"
  store="$work/store-$n"
  spec="$work/scale-$n.yaml"
  [ -f "$dump" ] || python3 tools/make_scale_dump.py --chunks "$n" --output "$dump" >/dev/null
  rm -rf "$store"
  cat > "$spec" <<YAML
pipeline: scale-$n
store: $store
stages:
  - {name: articles, type: ingest.wikipedia, params: {path: "$dump"}, batch_size: 16}
  - {name: chunks, type: chunk.text, inputs: [articles], concurrency: 2}
  - {name: vectors, type: encode.hashed, inputs: [chunks], batch_size: 256}
  - {name: windows, type: seq.window, inputs: [vectors], params: {context: 5, val_fraction: 0.1}}
  - {name: train, type: lvm.train, inputs: [windows], params: {arch: amn, epochs: 1}}
  - {name: index, type: retrieve.index, inputs: [vectors], params: {index: Flat}}
YAML
  log="$work/scale-$n.log"
  /usr/bin/time -f "%e %M" -o "$work/time-$n" build/lvmflow run "$spec" --quiet >"$log" 2>&1 ||
    { echo "bench_scale: run at $n chunks failed; see $log" >&2; tail -3 "$log" >&2; exit 1; }
  read -r wall rss_kb < "$work/time-$n"
  /usr/bin/time -f "%e" -o "$work/rerun-$n" build/lvmflow run "$spec" --quiet >>"$log" 2>&1
  read -r rerun < "$work/rerun-$n"
  store_bytes=$(du -sb "$store" | cut -f1)
  vectors_file=$(find "$store/artifacts" -name vectors.npy -printf "%s %p\n" | sort -n | tail -1 | cut -d' ' -f2)
  vectors_bytes=$(stat -c %s "$vectors_file")
  chunks=$(( (vectors_bytes - 128) / (768 * 4) ))
  awk -v c="$chunks" -v w="$wall" -v r="$rss_kb" -v s="$store_bytes" -v v="$vectors_bytes" -v rr="$rerun" 'BEGIN {
    printf "%9d %9.1f %9.0f %10.0f %10.0f %7.2f %7.2f %9.3f %9.2f\n", c, w, r / 1024, s / 1048576, v / 1048576,
      r * 1024 / v, s / v, w / (c / 1000), 100 * rr / w }'
  [ "$keep" = 1 ] || rm -rf "$store"
done

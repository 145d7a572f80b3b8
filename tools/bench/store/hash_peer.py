"""Python peer of lvmflow_store_bench: hashlib over the same file (md5 is what DVC records per
file, sha256 what a careful script would use). Prints `name seconds` per line, best of REPS."""
import hashlib
import sys
import time

path, reps = sys.argv[1], int(sys.argv[2])
for name in ("md5", "sha256"):
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        h = hashlib.new(name)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.hexdigest()
        best = min(best, time.perf_counter() - start)
    print(name, best)

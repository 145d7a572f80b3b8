"""Opens a retrieve.index folder with Python FAISS (Debian's python3-faiss) the way a user
would, and checks it. Usage: read_index_check.py COUNT DIM ROW DIR... Exits non-zero on failure."""
import os
import sys

import faiss
import numpy as np


def check(folder, count, dim, row):
    index = faiss.read_index(os.path.join(folder, "index.faiss"))
    assert index.ntotal == count and index.d == dim, (index.ntotal, index.d)
    assert index.metric_type == faiss.METRIC_INNER_PRODUCT

    ids = open(os.path.join(folder, "ids.txt"), encoding="utf-8").read().splitlines()
    assert len(ids) == count

    # texts.bin, read as documented in stages/retrieve/chunk_table.hpp.
    blob = open(os.path.join(folder, "texts.bin"), "rb").read()
    assert blob[:8] == b"LVMTXT01"
    n = int.from_bytes(blob[8:16], "little")
    offsets = np.frombuffer(blob, "<u8", n + 1, 16)
    base = 16 + 8 * (n + 1)
    text = blob[base + int(offsets[row]):base + int(offsets[row + 1])].decode("utf-8")
    assert n == count and text.startswith("article "), text

    vectors_path = os.path.join(folder, "vectors.npy")
    if os.path.exists(vectors_path):   # approximate index: the exact reference copy
        vector = np.load(vectors_path)[row]
        mapped = faiss.read_index(os.path.join(folder, "index.faiss"), faiss.IO_FLAG_MMAP)
        assert mapped.ntotal == count
    else:
        vector = index.reconstruct(row)
    scores, rows = index.search(vector.reshape(1, -1).astype("float32"), 1)
    assert rows[0, 0] == row, (rows, ids[row])
    print("ok", type(index).__name__, ids[row], float(scores[0, 0]))


count, dim, row = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for folder in sys.argv[4:]:
    check(folder, count, dim, row)

"""Python peer of lvmflow_retrieve_bench: exact top-K cosine search over the same vectors the
C++ bench wrote (base.npy, queries.npy), the way the seed scripts do it: numpy and torch
matrix products, and Python FAISS (Debian's python3-faiss) when it is installed.

usage: retrieve_bench_peer.py WORKDIR K SEED_CORPUS   (run by lvmflow_retrieve_bench)
Prints rows in the C++ bench's table format; recall is against the C++ Flat results.
"""
import os
import sys
import time

import numpy as np

workdir, k, seed_corpus = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = np.load(os.path.join(workdir, "base.npy"))
queries = np.load(os.path.join(workdir, "queries.npy"))
exact = np.load(os.path.join(workdir, "exact_top_k.npy")).astype(np.int64)
SEED_LOW, SEED_HIGH = 4211 / 0.6, 4211 / 0.2
BLOCK = 1024   # queries per matrix product: bounds the score matrix (1024 x 100k floats = 400 MB)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall(found):
    return np.mean([len(set(f) & set(e)) / k for f, e in zip(found, exact)])


def row(name, seconds, cpu, found=None):
    qps = len(queries) / seconds
    rec = "%.4f" % recall(found) if found is not None else "exact"
    print("| %-34s | %13s | %7s | %6.3f (%6.3f) | %9.0f | %9.0f | %4.2f-%4.2fx | %9s |"
          % (name, "-", "-", seconds, cpu, qps, len(queries) / cpu, qps / SEED_HIGH, qps / SEED_LOW, rec),
          flush=True)


def numpy_top_k(db):
    q = unit(queries)
    out = np.empty((len(q), k), dtype=np.int64)
    for b in range(0, len(q), BLOCK):
        scores = q[b:b + BLOCK] @ db.T
        part = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
        out[b:b + BLOCK] = np.take_along_axis(part, order, axis=1)
    return out


def torch_top_k(db_t):
    import torch
    q = torch.nn.functional.normalize(torch.from_numpy(queries), dim=1)
    out = []
    for b in range(0, len(q), BLOCK):
        out.append(torch.topk(q[b:b + BLOCK] @ db_t.T, k, dim=1).indices)
    return torch.cat(out).numpy()


def timed(fn, *args):
    """Wall and CPU seconds (all threads, like the C++ bench's) of fn(*args), and its result."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - t0, time.process_time() - c0, result


db_all = unit(base).astype(np.float32)
db_seed = np.ascontiguousarray(db_all[:seed_corpus])
print("| %-34s | %13s | %7s | %15s | %9s | %9s | %11s | %9s |"
      % ("exact search (Python peer)", "build s (CPU)", "size MB", "search s (CPU)", "queries/s", "q/CPU-s",
         "vs seed", "recall@%d" % k))
print("|%s|--------------:|--------:|----------------:|----------:|----------:|------------:|----------:|"
      % ("-" * 36))
s, c, _ = timed(numpy_top_k, db_seed)
row("numpy matmul, %d vectors" % seed_corpus, s, c)
s, c, found = timed(numpy_top_k, db_all)
row("numpy matmul", s, c, found)
try:
    import torch
    torch.set_num_threads(os.cpu_count())   # torch defaults to physical cores: 1 here
    torch_db = torch.from_numpy(db_all)
    s, c, found = timed(torch_top_k, torch_db)
    row("torch matmul+topk, %d threads" % torch.get_num_threads(), s, c, found)
except ImportError:
    print("(torch not installed)")
try:
    import faiss
    index = faiss.IndexFlatIP(db_all.shape[1])
    index.add(db_all)
    s, c, (_, found) = timed(index.search, unit(queries).astype(np.float32), k)
    row("python faiss IndexFlatIP", s, c, found)
except ImportError:
    print("(python3-faiss not installed)")

"""Python side of tools/bench/encode: the same T5 encoder + pooling, run by PyTorch from Python
(tools/fixtures/t5_reference.py in float32, the way HF T5EncoderModel computes it), batched the
way SentenceTransformer.encode does (sorted by length, batches of 32), in inference mode.

  encode_peer.py --model DIR --texts FILE --max-length 100 [--threads N] [--batch-size 32]
                 [--repeats 2] [--out OUT.npy]
Prints one JSON line: {"chunks_per_s": ..., "threads": ..., "seconds": ...}.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures"))
from t5_reference import T5Reference  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--max-length", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="0 = PyTorch's default")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--pooling", default="sentence-transformers")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with open(args.texts) as f:
        texts = f.read().split("\n")[:-1]
    model = T5Reference(args.model, dtype=torch.float32)
    toks = model.tokenize(texts, args.max_length)
    order = sorted(range(len(toks)), key=lambda i: len(toks[i]))

    def run():
        out = [None] * len(toks)
        for b in range(0, len(order), args.batch_size):
            idx = order[b:b + args.batch_size]
            emb = model.encode_tokens([toks[i] for i in idx], args.pooling)
            for j, i in enumerate(idx):
                out[i] = emb[j]
        return torch.stack(out)

    model.encode_tokens(toks[:4], args.pooling)  # warm-up
    best = float("inf")
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        vectors = run()
        best = min(best, time.perf_counter() - t0)
    if args.out:
        np.save(args.out, vectors.numpy().astype(np.float32))
    print(json.dumps({"chunks_per_s": len(texts) / best, "seconds": best, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

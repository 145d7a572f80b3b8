#!/usr/bin/env python3
"""float32 GEMM engines libtorch offers on this CPU, at the shapes of one GTR-T5-base layer.

For a batch of 32 chunks x 100 tokens (M = 3200): q/k/v, o, wi, wo. One thread, best of 5 by
process CPU time: OpenBLAS sgemm (what torch.nn.functional.linear and LinearOp use) against
oneDNN's float32 linear (to_mkldnn weights), with and without the input reorder per call.

    OPENBLAS_NUM_THREADS=1 python3 tools/bench/encode/gemm_engines.py
"""
import time

import torch


def best_ms(fn, reps=5):
    fn()
    times = []
    for _ in range(reps):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times) * 1000.0


def main():
    torch.set_num_threads(1)
    totals = [0.0, 0.0, 0.0]
    print("M x K x N: OpenBLAS sgemm | oneDNN fp32 incl. input reorder | oneDNN fp32, input pre-blocked  (ms, GFLOP/s)")
    with torch.inference_mode():
        for name, (m, k, n) in [("qkv", (3200, 768, 2304)), ("o", (3200, 768, 768)), ("wi", (3200, 768, 3072)),
                                ("wo", (3200, 3072, 768))]:
            a, w = torch.randn(m, k), torch.randn(n, k)
            w_blocked, a_blocked = w.to_mkldnn(), a.to_mkldnn()
            ms = [best_ms(lambda: torch.nn.functional.linear(a, w)),
                  best_ms(lambda: torch._C._nn.mkldnn_linear(a.to_mkldnn(), w_blocked).to_dense()),
                  best_ms(lambda: torch._C._nn.mkldnn_linear(a_blocked, w_blocked))]
            gflop = 2.0 * m * k * n / 1e9
            print(f"{name:4s} {m}x{k}x{n}: " + " | ".join(f"{t:7.1f} ms {gflop / t * 1000:5.0f}" for t in ms))
            totals = [s + t for s, t in zip(totals, ms)]
    print("layer total ms: " + " | ".join(f"{t:.1f}" for t in totals))


if __name__ == "__main__":
    main()

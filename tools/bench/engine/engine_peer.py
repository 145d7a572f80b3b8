"""Python peer for engine_bench.cpp: the usual way to chain stages in Python, one thread per
stage with queue.Queue between them (bounded, for backpressure). Prints:
per-hop overhead in microseconds, and wall / busy seconds of two 5 ms stages over 60 items."""
import queue
import sys
import threading
import time

END = object()


def run_chain(n_items, hops, delay_s):
    queues = [queue.Queue(maxsize=4) for _ in range(hops + 1)]
    busy = [0.0] * hops

    def stage(i):
        q_in, q_out = queues[i], queues[i + 1]
        while True:
            item = q_in.get()
            if item is END:
                q_out.put(END)
                return
            t0 = time.perf_counter()
            if delay_s:
                time.sleep(delay_s)
            out = [v * 1 for v in item]
            busy[i] += time.perf_counter() - t0
            q_out.put(out)

    threads = [threading.Thread(target=stage, args=(i,)) for i in range(hops)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()

    def produce():
        for k in range(n_items):
            queues[0].put([k])
        queues[0].put(END)

    producer = threading.Thread(target=produce)
    producer.start()
    total = 0
    while True:
        item = queues[-1].get()
        if item is END:
            break
        total += sum(item)
    producer.join()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sum(busy)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    base = min(run_chain(n, 0, 0)[0] for _ in range(3))
    chained = min(run_chain(n, 8, 0)[0] for _ in range(3))
    per_hop_us = (chained - base) / (n * 8) * 1e6
    wall, busy = run_chain(60, 2, 0.005)
    print(f"{per_hop_us:.3f} {wall:.4f} {busy:.4f}")


if __name__ == "__main__":
    main()

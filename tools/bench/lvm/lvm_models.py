#!/usr/bin/env python3
"""PyTorch peers of the lvmflow next-vector models (stages/lvm/lvm_models.cpp).

The modules here have the same parameter names as the C++ ones, so a checkpoint written by
`lvm.train` (model.safetensors + model.json) loads with load_state_dict(strict=True):

    from lvm_models import load_checkpoint
    model, info = load_checkpoint("path/to/lvm.train/artifact")
    prediction = model(context)          # context [B, N, 768] -> [B, 768], L2-normalised

Command line:
    lvm_models.py check DIR...  load each DIR's checkpoint strictly, run DIR/inputs.npy, compare
                                with DIR/expected.npy (exit 1 when any differs)
    lvm_models.py bench [--threads N] [--reps R] [--train-steps S] [--arch A] [--clock cpu|wall]
                                latency at batch 1/32/128 and training samples/s per
                                architecture, one JSON object per line (read by lvm_bench)
Needs only torch and numpy (no safetensors package: the format is read here directly).
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def default_config(arch, input_dim=768, context=5):
    """The sizes of ../shared/seeds/004, as stages/lvm/model_config.cpp gives them."""
    sizes = {
        "lstm": dict(hidden=512, layers=2, heads=0, ff=0, dropout=0.2),
        "gru": dict(hidden=512, layers=4, heads=0, ff=0, dropout=0.0),
        "transformer": dict(hidden=512, layers=4, heads=8, ff=2048, dropout=0.1),
        "amn": dict(hidden=256, layers=1, heads=0, ff=512, dropout=0.0),
    }[arch]
    return dict(arch=arch, input_dim=input_dim, context=context, **sizes)


class LSTMModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.lstm = nn.LSTM(c["input_dim"], c["hidden"], num_layers=c["layers"], batch_first=True,
                            dropout=c["dropout"] if c["layers"] > 1 else 0.0)
        self.output_proj = nn.Linear(c["hidden"], c["input_dim"])

    def forward(self, x):
        out, _ = self.lstm(x)
        return F.normalize(self.output_proj(out[:, -1]), dim=-1)


class GRUBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.gru = nn.GRU(width, width, batch_first=True)
        self.norm = nn.LayerNorm(width)

    def forward(self, x):
        return self.norm(x + self.gru(x)[0])


class GRUModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_proj = nn.Linear(c["input_dim"], c["hidden"])
        self.blocks = nn.ModuleList(GRUBlock(c["hidden"]) for _ in range(c["layers"]))
        self.output_proj = nn.Linear(c["hidden"], c["input_dim"])

    def forward(self, x):
        x = self.input_proj(x)
        for block in self.blocks:
            x = block(x)
        return F.normalize(self.output_proj(x[:, -1]), dim=-1)


def sinusoidal_positions(length, width):
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(length, width)
    pe[:, 0::2] = torch.sin(position * div)
    pe[:, 1::2] = torch.cos(position * div)[:, : width // 2]
    return pe


class TransformerModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_proj = nn.Linear(c["input_dim"], c["hidden"])
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(c["hidden"], c["heads"], c["ff"], c["dropout"], batch_first=True)
            for _ in range(c["layers"]))
        self.head = nn.Sequential(nn.Linear(c["hidden"], c["hidden"]), nn.GELU(), nn.LayerNorm(c["hidden"]),
                                  nn.Linear(c["hidden"], c["input_dim"]))
        self.register_buffer("positions", sinusoidal_positions(64, c["hidden"]), persistent=False)

    def forward(self, x):
        length = x.size(1)
        memory = self.input_proj(x) + self.positions[:length]
        mask = torch.triu(torch.full((length, length), float("-inf")), diagonal=1)
        h = memory
        for layer in self.layers:
            h = layer(h, memory, tgt_mask=mask, memory_mask=mask)
        return F.normalize(self.head(h[:, -1]), dim=-1)


class AMNModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, a, ff = c["input_dim"], c["hidden"], c["ff"]
        self.key_proj = nn.Linear(d, a)
        self.query_proj = nn.Linear(d, a)
        self.residual_mlp = nn.Sequential(nn.Linear(2 * d, ff), nn.GELU(), nn.LayerNorm(ff),
                                          nn.Linear(ff, ff // 2), nn.GELU(), nn.LayerNorm(ff // 2),
                                          nn.Linear(ff // 2, d))
        nn.init.zeros_(self.residual_mlp[-1].weight)   # starts as the linear-average baseline
        nn.init.zeros_(self.residual_mlp[-1].bias)
        self.scale = 1.0 / math.sqrt(a)

    def forward(self, x):
        baseline = x.mean(1)
        keys = self.key_proj(x)
        query = self.query_proj(baseline).unsqueeze(-1)
        weights = (keys.bmm(query).squeeze(-1) * self.scale).softmax(-1)
        mixed = weights.unsqueeze(1).bmm(x).squeeze(1)
        residual = self.residual_mlp(torch.cat([baseline, mixed], -1))
        return F.normalize(baseline + residual, dim=-1)


MODELS = {"lstm": LSTMModel, "gru": GRUModel, "transformer": TransformerModel, "amn": AMNModel}


def make_model(config):
    return MODELS[config["arch"]](config)


def read_safetensors(path):
    """name -> torch.Tensor for a float32 safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])
    base = 8 + header_len
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(raw, dtype="<f4", count=(end - begin) // 4, offset=base + begin)
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors


def load_checkpoint(directory):
    with open(f"{directory}/model.json") as f:
        info = json.load(f)
    model = make_model(info["model"])
    model.load_state_dict(read_safetensors(f"{directory}/{info.get('weights', 'model.safetensors')}"), strict=True)
    model.eval()
    return model, info


def check(directory, tolerance):
    model, info = load_checkpoint(directory)
    inputs = torch.from_numpy(np.load(f"{directory}/inputs.npy"))
    expected = np.load(f"{directory}/expected.npy")
    with torch.no_grad():
        got = model(inputs).numpy()
    diff = float(np.abs(got - expected).max())
    print(f"{info['model']['arch']}: loaded strictly, max |python - c++| = {diff:.3g}")
    return 0 if diff <= tolerance else 1


def median_ms(fn, reps, clock=time.perf_counter):
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        start = clock()
        fn()
        times.append((clock() - start) * 1000.0)
    times.sort()
    return times[len(times) // 2]


def bench(threads, reps, train_steps, archs, clock):
    torch.set_num_threads(threads)
    for arch in archs:
        torch.manual_seed(0)
        config = default_config(arch)
        model = make_model(config).eval()
        row = {"arch": arch, "params": sum(p.numel() for p in model.parameters()), "threads": threads}
        for batch in (1, 32, 128):
            x = torch.randn(batch, config["context"], config["input_dim"])
            with torch.inference_mode():
                row[f"batch{batch}_ms"] = median_ms(lambda: model(x), reps if batch < 128 else max(5, reps // 4), clock)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
        x = torch.randn(32, config["context"], config["input_dim"])
        y = F.normalize(torch.randn(32, config["input_dim"]), dim=-1)

        phases = {"forward": [], "backward": [], "optimizer": []}

        def step():
            start = clock()
            loss = F.mse_loss(model(x), y)
            forward_done = clock()
            optimizer.zero_grad()
            loss.backward()
            backward_done = clock()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            phases["forward"].append(forward_done - start)
            phases["backward"].append(backward_done - forward_done)
            phases["optimizer"].append(clock() - backward_done)
        step_ms = median_ms(step, train_steps, clock)
        row["train_samples_per_s"] = 32 * 1000.0 / step_ms
        for phase, times in phases.items():
            row[f"train_{phase}_ms"] = sorted(times)[len(times) // 2] * 1000.0
        print(json.dumps(row), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("directories", nargs="+")
    c.add_argument("--tolerance", type=float, default=1e-5)
    b = sub.add_parser("bench")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--reps", type=int, default=50)
    b.add_argument("--train-steps", type=int, default=10)
    b.add_argument("--arch", choices=sorted(MODELS), help="only this architecture")
    b.add_argument("--clock", choices=["cpu", "wall"], default="wall",
                   help="cpu: process CPU time (needs --threads 1 and OPENBLAS_NUM_THREADS=1); wall: elapsed")
    args = parser.parse_args()
    if args.command == "check":
        return max(check(d, args.tolerance) for d in args.directories)
    bench(args.threads, args.reps, args.train_steps,
          [args.arch] if args.arch else ["amn", "lstm", "gru", "transformer"],
          time.process_time if args.clock == "cpu" else time.perf_counter)
    return 0


if __name__ == "__main__":
    sys.exit(main())

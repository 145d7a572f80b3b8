"""The PyTorch side of the decode benchmark: vec2text inference the way a Python user runs it
(eager PyTorch, float32, key/value cache in the decoder, beams of a batch decoded together as
HF generate does), on the same checkpoint folders and target vectors as decode_bench.

  decode_peer.py MODELS_DIR TARGETS.npy STEPS WIDTH BEAMS BATCH MAX_LENGTH THREADS

Prints one JSON line: {"seconds": wall seconds, "cpu_seconds": process CPU seconds, "texts": [...]}. The math is
tools/fixtures/vec2text_reference.py (the tests' reference); this file only replaces its
full-recompute generation by cached, batched generation so the timing is a fair peer.
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "fixtures"))
from vec2text_reference import EOS, PAD, T5Seq2SeqRef, Vec2TextRef  # noqa: E402


class CachedT5(T5Seq2SeqRef):
    """Adds incremental decoding (HF's past_key_values) to the reference T5."""

    def _start(self, enc, enc_mask):
        H, dk = self.a.heads, self.a.d_kv
        B, S, _ = enc.shape
        cache = {"cross": [], "self": [None] * self.a.dec_layers, "len": 0, "bias": self.mask_bias(enc_mask)}
        for i in range(self.a.dec_layers):
            p = f"decoder.block.{i}.layer.1.EncDecAttention."
            k = (enc @ self.w[p + "k.weight"].T).view(B, S, H, dk).transpose(1, 2)
            v = (enc @ self.w[p + "v.weight"].T).view(B, S, H, dk).transpose(1, 2)
            cache["cross"].append((k, v))
        return cache

    def _step(self, cache, tokens):
        H, dk = self.a.heads, self.a.d_kv
        N = tokens.shape[0]
        t = cache["len"]
        h = self.embed(tokens[:, None])
        rel = self.w["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
        bias = rel[self.buckets(1, t + 1, False, q_offset=t)].permute(2, 0, 1)[None]
        for i in range(self.a.dec_layers):
            p = f"decoder.block.{i}.layer."
            n = self.rms(h, self.w[p + "0.layer_norm.weight"])
            a = p + "0.SelfAttention."
            q = (n @ self.w[a + "q.weight"].T).view(N, 1, H, dk).transpose(1, 2)
            k = (n @ self.w[a + "k.weight"].T).view(N, 1, H, dk).transpose(1, 2)
            v = (n @ self.w[a + "v.weight"].T).view(N, 1, H, dk).transpose(1, 2)
            if cache["self"][i] is not None:
                k = torch.cat([cache["self"][i][0], k], 2)
                v = torch.cat([cache["self"][i][1], v], 2)
            cache["self"][i] = (k, v)
            ctx = torch.softmax(q @ k.transpose(-1, -2) + bias, -1) @ v
            h = h + ctx.transpose(1, 2).reshape(N, 1, H * dk) @ self.w[a + "o.weight"].T
            n = self.rms(h, self.w[p + "1.layer_norm.weight"])
            c = p + "1.EncDecAttention."
            q = (n @ self.w[c + "q.weight"].T).view(N, 1, H, dk).transpose(1, 2)
            ck, cv = cache["cross"][i]
            ctx = torch.softmax(q @ ck.transpose(-1, -2) + cache["bias"], -1) @ cv
            h = h + ctx.transpose(1, 2).reshape(N, 1, H * dk) @ self.w[c + "o.weight"].T
            h = h + self.ffn(p + "2.DenseReluDense.", self.rms(h, self.w[p + "2.layer_norm.weight"]))
        cache["len"] = t + 1
        h = self.rms(h, self.w["decoder.final_layer_norm.weight"])[:, 0]
        if self.a.tied:
            return (h * self.a.d_model ** -0.5) @ self.w["shared.weight"].T
        return h @ self.w["lm_head.weight"].T

    @staticmethod
    def _select(cache, rows):
        cache["self"] = [(k[rows], v[rows]) for k, v in cache["self"]]
        cache["cross"] = [(k[rows], v[rows]) for k, v in cache["cross"]]
        cache["bias"] = cache["bias"][rows]

    def greedy(self, enc, enc_mask, max_length):
        B = enc.shape[0]
        cache = self._start(enc, enc_mask)
        seqs = torch.zeros(B, 1, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        last = seqs[:, 0]
        while seqs.shape[1] < max_length and not done.all():
            nxt = self._step(cache, last).argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            seqs = torch.cat([seqs, nxt[:, None]], 1)
            done = done | (nxt == EOS)
            last = nxt
        return seqs

    def beam_search(self, enc, enc_mask, num_beams, max_length, num_return):
        B, K = enc.shape[0], num_beams
        cache = self._start(enc.repeat_interleave(K, 0), enc_mask.repeat_interleave(K, 0))
        beams = [[PAD] for _ in range(B * K)]
        scores = torch.tensor(([0.0] + [-1e9] * (K - 1)) * B)
        hyps = [[] for _ in range(B)]
        done = [False] * B
        last = torch.zeros(B * K, dtype=torch.long)
        cur_len = 1
        while cur_len < max_length:
            logp = torch.log_softmax(self._step(cache, last), -1) + scores[:, None]
            V = logp.shape[1]
            top_v, top_i = torch.topk(logp.view(B, K * V), 2 * K, dim=1)
            rows, toks, new_scores = [], [], []
            for b in range(B):
                if done[b]:
                    rows += [b * K] * K
                    toks += [PAD] * K
                    new_scores += [0.0] * K
                    continue
                filled = 0
                for rank, (s, idx) in enumerate(zip(top_v[b].tolist(), top_i[b].tolist())):
                    beam, tok = divmod(idx, V)
                    if tok == EOS:
                        if rank < K:
                            self._add_hyp(hyps[b], K, beams[b * K + beam] + [EOS], s / cur_len)
                    else:
                        rows.append(b * K + beam)
                        toks.append(tok)
                        new_scores.append(s)
                        filled += 1
                    if filled == K:
                        break
                done[b] = len(hyps[b]) >= K and min(h[0] for h in hyps[b]) >= top_v[b, 0].item() / cur_len
            beams = [beams[r] + [t] for r, t in zip(rows, toks)]
            scores = torch.tensor(new_scores)
            cur_len += 1
            if all(done):
                break
            self._select(cache, torch.tensor(rows))
            last = torch.tensor(toks)
        out = []
        for b in range(B):
            if not done[b]:
                for k in range(K):
                    self._add_hyp(hyps[b], K, beams[b * K + k], scores[b * K + k].item() / len(beams[b * K + k]))
            hyps[b].sort(key=lambda h: -h[0])
            out.append([(t, s) for s, t in hyps[b][:num_return]])
        return out


def main():
    models, targets_path, steps, width, beams, batch, max_length, threads = sys.argv[1:9]
    torch.set_num_threads(int(threads))
    steps, width, beams, batch, max_length = map(int, (steps, width, beams, batch, max_length))
    ref = Vec2TextRef(os.path.join(models, "inversion"), os.path.join(models, "corrector"),
                      os.path.join(models, "gtr"), torch.float32)
    ref.inv.t5.__class__ = CachedT5
    ref.cor.t5.__class__ = CachedT5
    targets = torch.from_numpy(np.load(targets_path)).float()
    texts = []
    with torch.inference_mode():   # warm-up, as decode_bench does before its clock starts
        ref.invert(targets[:1], 1, 0, 1, 4)
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for i in range(0, targets.shape[0], batch):
            texts += ref.invert(targets[i:i + batch], steps, width, beams, max_length)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "texts": texts}))


if __name__ == "__main__":
    main()

#include "stages/decode/t5_seq2seq.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace {

// Highest block index + 1 among names "<prefix><stack>.block.<i>...".
std::int64_t count_blocks(const CheckpointTensors& t, const std::string& stack_prefix) {
  std::int64_t count = 0;
  for (const std::string& name : t.names_with_prefix(stack_prefix)) {
    const std::string rest = name.substr(stack_prefix.size());
    count = std::max<std::int64_t>(count, std::stoll(rest.substr(0, rest.find('.'))) + 1);
  }
  return count;
}

std::vector<std::int64_t> require_shape(const CheckpointTensors& t, const std::string& name, std::size_t rank) {
  std::vector<std::int64_t> s = t.shape(name);
  if (s.size() != rank)
    throw Error((t.folder() / t.source()).string(),
                s.empty() ? "tensor '" + name + "' is missing" : "tensor '" + name + "' has shape " + shape_string(s),
                "expected a T5 encoder-decoder (T5ForConditionalGeneration) under this name prefix");
  return s;
}

}  // namespace

std::string T5Seq2SeqArch::describe() const {
  return "T5 d_model " + std::to_string(config.d_model) + ", " + std::to_string(config.num_layers) + "+" +
         std::to_string(decoder_layers) + " layers, " + std::to_string(config.num_heads) + " heads, d_ff " +
         std::to_string(config.d_ff) + ", " + config.feed_forward_proj + ", vocab " +
         std::to_string(config.vocab_size) + (tied_lm_head ? ", tied LM head" : ", own lm_head");
}

T5Seq2SeqArch infer_t5_arch(const CheckpointTensors& t, const std::string& prefix, const std::string& base_model) {
  T5Seq2SeqArch a;
  T5Config& c = a.config;
  const auto shared = require_shape(t, prefix + "shared.weight", 2);
  c.vocab_size = shared[0];
  c.d_model = shared[1];
  const auto rel = require_shape(t, prefix + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2);
  c.num_buckets = rel[0];
  c.num_heads = rel[1];
  const auto q = require_shape(t, prefix + "encoder.block.0.layer.0.SelfAttention.q.weight", 2);
  if (c.num_heads <= 0 || q[0] % c.num_heads != 0)
    throw Error((t.folder() / t.source()).string(),
                "attention width " + std::to_string(q[0]) + " is not a multiple of " + std::to_string(c.num_heads) +
                    " heads", "the checkpoint is not a T5 model");
  c.d_kv = q[0] / c.num_heads;
  c.gated = t.has(prefix + "encoder.block.0.layer.1.DenseReluDense.wi_0.weight");
  c.feed_forward_proj = c.gated ? "gated-gelu" : "relu";
  c.d_ff = require_shape(t, prefix + (c.gated ? "encoder.block.0.layer.1.DenseReluDense.wi_0.weight"
                                              : "encoder.block.0.layer.1.DenseReluDense.wi.weight"), 2)[0];
  c.num_layers = count_blocks(t, prefix + "encoder.block.");
  a.decoder_layers = count_blocks(t, prefix + "decoder.block.");
  if (a.decoder_layers == 0)
    throw Error((t.folder() / t.source()).string(), "no decoder tensors ('" + prefix + "decoder.block.*')",
                "vec2text checkpoints hold a whole T5 encoder-decoder; is this an encoder-only model?");
  c.max_distance = 128;
  c.layer_norm_eps = 1e-6;
  const bool v1_1 = base_model.find("v1_1") != std::string::npos || base_model.find("flan") != std::string::npos;
  a.tied_lm_head = base_model.empty() ? !c.gated : !v1_1;
  return a;
}

void T5Seq2Seq::DecoderCache::select_rows(const at::Tensor& rows) {
  for (auto* list : {&self_k, &self_v, &cross_k, &cross_v})
    for (at::Tensor& x : *list) x = x.index_select(0, rows);
  cross_bias = cross_bias.index_select(0, rows);
}

T5Seq2Seq::Attention T5Seq2Seq::load_attention(const CheckpointTensors& t, const std::string& p) const {
  const std::int64_t d = arch_.config.d_model, inner = arch_.config.inner_dim();
  Attention a;
  a.q = LinearOp(t.get(p + "q.weight", {inner, d}), dtype_);
  a.kv = LinearOp(at::cat({t.get(p + "k.weight", {inner, d}), t.get(p + "v.weight", {inner, d})}), dtype_);
  a.o = LinearOp(t.get(p + "o.weight", {d, inner}), dtype_);
  return a;
}

T5Seq2Seq::FeedForward T5Seq2Seq::load_ff(const CheckpointTensors& t, const std::string& p) const {
  const std::int64_t d = arch_.config.d_model, ff = arch_.config.d_ff;
  FeedForward f;
  f.norm = t.get(p + "layer_norm.weight", {d});
  f.wi = LinearOp(arch_.config.gated ? at::cat({t.get(p + "DenseReluDense.wi_0.weight", {ff, d}),
                                                  t.get(p + "DenseReluDense.wi_1.weight", {ff, d})})
                                       : t.get(p + "DenseReluDense.wi.weight", {ff, d}),
                  dtype_);
  f.wo = LinearOp(t.get(p + "DenseReluDense.wo.weight", {d, ff}), dtype_);
  return f;
}

T5Seq2Seq::T5Seq2Seq(const CheckpointTensors& t, const std::string& prefix, const T5Seq2SeqArch& arch,
                     ComputeDType dtype)
    : arch_(arch), dtype_(dtype) {
  const T5Config& c = arch.config;
  const std::int64_t d = c.d_model;
  shared_ = t.get(prefix + "shared.weight", {c.vocab_size, d});
  // The LM head multiplies with the embedding table when tied (kept float32 for lookups).
  lm_head_ = LinearOp(arch.tied_lm_head ? shared_ : t.get(prefix + "lm_head.weight", {c.vocab_size, d}), dtype);
  encoder_bias_ = t.get(prefix + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                        {c.num_buckets, c.num_heads});
  decoder_bias_ = t.get(prefix + "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                        {c.num_buckets, c.num_heads});
  encoder_final_ = t.get(prefix + "encoder.final_layer_norm.weight", {d});
  decoder_final_ = t.get(prefix + "decoder.final_layer_norm.weight", {d});
  for (std::int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = prefix + "encoder.block." + std::to_string(i) + ".layer.";
    EncoderLayer l;
    l.attn_norm = t.get(p + "0.layer_norm.weight", {d});
    l.attn = load_attention(t, p + "0.SelfAttention.");
    l.ff = load_ff(t, p + "1.");
    encoder_.push_back(std::move(l));
  }
  for (std::int64_t i = 0; i < arch.decoder_layers; ++i) {
    const std::string p = prefix + "decoder.block." + std::to_string(i) + ".layer.";
    DecoderLayer l;
    l.self_norm = t.get(p + "0.layer_norm.weight", {d});
    l.self_attn = load_attention(t, p + "0.SelfAttention.");
    l.cross_norm = t.get(p + "1.layer_norm.weight", {d});
    l.cross_attn = load_attention(t, p + "1.EncDecAttention.");
    l.ff = load_ff(t, p + "2.");
    decoder_.push_back(std::move(l));
  }
}

at::Tensor T5Seq2Seq::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // T5's layer norm: scale only (no mean subtraction, no bias).
  return x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + arch_.config.layer_norm_eps) * weight;
}

at::Tensor T5Seq2Seq::feed_forward(const FeedForward& ff, const at::Tensor& x) const {
  const at::Tensor n = rms_norm(x, ff.norm);
  at::Tensor h;
  if (arch_.config.gated) {
    h = ff.wi(n);
    const std::int64_t d_ff = arch_.config.d_ff;
    h = at::gelu(h.narrow(-1, 0, d_ff), "tanh") * h.narrow(-1, d_ff, d_ff);   // HF "gelu_new"
  } else {
    h = ff.wi.with_relu(n);
  }
  return ff.wo(h);
}

at::Tensor T5Seq2Seq::split_heads(const at::Tensor& x) const {
  return x.view({x.size(0), x.size(1), arch_.config.num_heads, arch_.config.d_kv}).transpose(1, 2);
}

at::Tensor T5Seq2Seq::merge_heads(const at::Tensor& x) const {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), arch_.config.inner_dim()});
}

at::Tensor T5Seq2Seq::attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& bias) const {
  // T5 folds 1/sqrt(d_kv) into its initialisation: scores are not scaled.
  return at::matmul(at::softmax(at::matmul(q, k.transpose(-1, -2)) + bias, -1), v);
}

at::Tensor T5Seq2Seq::mask_bias(const at::Tensor& mask) const {
  return ((1 - mask.to(at::kFloat)) * std::numeric_limits<float>::lowest()).view({mask.size(0), 1, 1, mask.size(1)});
}

at::Tensor T5Seq2Seq::position_bias(const at::Tensor& table, std::int64_t q_len, std::int64_t k_len,
                                    std::int64_t q_offset, bool bidirectional) const {
  // HF T5Attention._relative_position_bucket: exact buckets for small distances, then
  // logarithmic up to max_distance; the encoder splits the buckets between both directions,
  // the decoder only looks back. Same float32 arithmetic as HF so boundaries agree exactly.
  const auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor rel = at::arange(k_len, opts).unsqueeze(0) - (at::arange(q_len, opts) + q_offset).unsqueeze(1);
  std::int64_t buckets = arch_.config.num_buckets;
  at::Tensor result = at::zeros_like(rel), n;
  if (bidirectional) {
    buckets /= 2;
    result = (rel > 0).to(at::kLong) * buckets;
    n = rel.abs();
  } else {
    n = -at::clamp_max(rel, 0);
  }
  const std::int64_t max_exact = buckets / 2;
  at::Tensor large = max_exact + (at::log(n.to(at::kFloat) / static_cast<double>(max_exact)) /
                                  std::log(static_cast<double>(arch_.config.max_distance) / max_exact) *
                                  static_cast<double>(buckets - max_exact))
                                     .to(at::kLong);
  large = at::clamp_max(large, buckets - 1);
  at::Tensor bucket = result + at::where(n < max_exact, n, large);
  return table.index_select(0, bucket.reshape({-1})).view({q_len, k_len, -1}).permute({2, 0, 1}).unsqueeze(0);
}

at::Tensor T5Seq2Seq::embed(const at::Tensor& ids) const {
  return shared_.index_select(0, ids.reshape({-1})).view({ids.size(0), ids.size(1), d_model()});
}

at::Tensor T5Seq2Seq::encode(const at::Tensor& inputs_embeds, const at::Tensor& mask) const {
  const std::int64_t L = inputs_embeds.size(1), inner = arch_.config.inner_dim();
  at::Tensor bias = position_bias(encoder_bias_, L, L, 0, /*bidirectional=*/true) + mask_bias(mask);
  at::Tensor x = inputs_embeds.to(at::kFloat);
  for (const EncoderLayer& l : encoder_) {
    at::Tensor n = rms_norm(x, l.attn_norm);
    at::Tensor q = split_heads(l.attn.q(n));
    at::Tensor kv = l.attn.kv(n);
    at::Tensor ctx = attend(q, split_heads(kv.narrow(-1, 0, inner)), split_heads(kv.narrow(-1, inner, inner)), bias);
    x = x + l.attn.o(merge_heads(ctx));
    x = x + feed_forward(l.ff, x);
  }
  return rms_norm(x, encoder_final_);
}

T5Seq2Seq::DecoderCache T5Seq2Seq::start_decoder(const at::Tensor& encoded, const at::Tensor& mask) const {
  const std::int64_t inner = arch_.config.inner_dim();
  DecoderCache cache;
  cache.cross_bias = mask_bias(mask);
  for (const DecoderLayer& l : decoder_) {
    at::Tensor kv = l.cross_attn.kv(encoded);   // once per encoder output, reused every step
    cache.cross_k.push_back(split_heads(kv.narrow(-1, 0, inner)).contiguous());
    cache.cross_v.push_back(split_heads(kv.narrow(-1, inner, inner)).contiguous());
    cache.self_k.emplace_back();
    cache.self_v.emplace_back();
  }
  return cache;
}

at::Tensor T5Seq2Seq::decode(DecoderCache& cache, const at::Tensor& tokens) const {
  const std::int64_t T = tokens.size(1), past = cache.length, inner = arch_.config.inner_dim();
  at::Tensor bias = position_bias(decoder_bias_, T, past + T, past, /*bidirectional=*/false);
  if (T > 1) {   // causal mask among the new positions
    at::Tensor future = at::arange(past + T).unsqueeze(0) > (at::arange(T) + past).unsqueeze(1);
    bias = bias.masked_fill(future, std::numeric_limits<float>::lowest());
  }
  at::Tensor x = embed(tokens);
  for (std::size_t i = 0; i < decoder_.size(); ++i) {
    const DecoderLayer& l = decoder_[i];
    at::Tensor n = rms_norm(x, l.self_norm);
    at::Tensor q = split_heads(l.self_attn.q(n));
    at::Tensor kv = l.self_attn.kv(n);
    at::Tensor k = split_heads(kv.narrow(-1, 0, inner)), v = split_heads(kv.narrow(-1, inner, inner));
    if (past > 0) {
      k = at::cat({cache.self_k[i], k}, 2);
      v = at::cat({cache.self_v[i], v}, 2);
    }
    cache.self_k[i] = k;
    cache.self_v[i] = v;
    x = x + l.self_attn.o(merge_heads(attend(q, k, v, bias)));

    n = rms_norm(x, l.cross_norm);
    q = split_heads(l.cross_attn.q(n));
    x = x + l.cross_attn.o(merge_heads(attend(q, cache.cross_k[i], cache.cross_v[i], cache.cross_bias)));
    x = x + feed_forward(l.ff, x);
  }
  cache.length += T;
  x = rms_norm(x, decoder_final_);
  if (arch_.tied_lm_head) x = x * std::pow(static_cast<double>(d_model()), -0.5);
  return lm_head_(x);
}

at::Tensor T5Seq2Seq::decoder_logits(const at::Tensor& encoded, const at::Tensor& mask,
                                     const at::Tensor& decoder_ids) const {
  DecoderCache cache = start_decoder(encoded, mask);
  return decode(cache, decoder_ids);
}

std::vector<std::vector<std::int64_t>> T5Seq2Seq::greedy(const at::Tensor& encoded, const at::Tensor& mask,
                                                         std::int64_t max_length) const {
  const std::int64_t B = encoded.size(0);
  std::vector<std::vector<std::int64_t>> seqs(B, std::vector<std::int64_t>{kDecoderStart});
  DecoderCache cache = start_decoder(encoded, mask);
  std::vector<std::int64_t> active(B);   // rows of `cache` -> batch rows still generating
  for (std::int64_t i = 0; i < B; ++i) active[i] = i;
  at::Tensor last = at::full({B, 1}, kDecoderStart, at::kLong);
  for (std::int64_t len = 1; len < max_length && !active.empty(); ++len) {
    at::Tensor next = decode(cache, last).select(1, 0).argmax(-1).contiguous();
    const std::int64_t* tok = next.data_ptr<std::int64_t>();
    std::vector<std::int64_t> keep_rows, still_active;
    for (std::size_t r = 0; r < active.size(); ++r) {
      seqs[active[r]].push_back(tok[r]);
      if (tok[r] != kEos) {
        keep_rows.push_back(static_cast<std::int64_t>(r));
        still_active.push_back(active[r]);
      }
    }
    // Finished rows leave the batch (HF keeps them and feeds padding; their output is the same).
    if (keep_rows.size() != active.size() && !keep_rows.empty()) {
      at::Tensor rows = at::tensor(keep_rows, at::kLong);
      cache.select_rows(rows);
      next = next.index_select(0, rows);
    }
    active = std::move(still_active);
    last = next.view({-1, 1});
  }
  // HF pads finished rows to the longest sequence of the batch.
  std::size_t longest = 0;
  for (const auto& s : seqs) longest = std::max(longest, s.size());
  for (auto& s : seqs) s.resize(longest, kPad);
  return seqs;
}

namespace {

// HF's BeamHypotheses: the num_beams best finished hypotheses of one row.
struct FinishedBeams {
  std::size_t capacity;
  std::vector<BeamHypothesis> hyps;
  double worst() const {
    double w = std::numeric_limits<double>::infinity();
    for (const auto& h : hyps) w = std::min(w, h.score);
    return w;
  }
  void add(std::vector<std::int64_t> tokens, double score) {
    if (hyps.size() < capacity || score > worst()) {
      hyps.push_back({std::move(tokens), score});
      if (hyps.size() > capacity) {
        auto it = std::min_element(hyps.begin(), hyps.end(),
                                   [](const auto& a, const auto& b) { return a.score < b.score; });
        hyps.erase(it);
      }
    }
  }
  // early_stopping=False: done when the best running beam cannot beat the worst kept one.
  bool done(double best_running_sum, std::int64_t cur_len) const {
    return hyps.size() >= capacity && worst() >= best_running_sum / static_cast<double>(cur_len);
  }
};

}  // namespace

std::vector<std::vector<BeamHypothesis>> T5Seq2Seq::beam_search(const at::Tensor& encoded, const at::Tensor& mask,
                                                                 std::int64_t num_beams, std::int64_t max_length,
                                                                 std::int64_t num_return) const {
  const std::int64_t B = encoded.size(0), K = num_beams, N = B * K;
  const std::int64_t V = arch_.config.vocab_size;
  DecoderCache cache = start_decoder(encoded.repeat_interleave(K, 0), mask.repeat_interleave(K, 0));
  std::vector<std::vector<std::int64_t>> seqs(N, std::vector<std::int64_t>{kDecoderStart});
  std::vector<double> beam_scores(N, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t k = 1; k < K; ++k) beam_scores[b * K + k] = -1e9;   // all beams start identical
  std::vector<FinishedBeams> finished(B, FinishedBeams{static_cast<std::size_t>(K), {}});
  std::vector<bool> row_done(B, false);
  at::Tensor last = at::full({N, 1}, kDecoderStart, at::kLong);
  std::int64_t cur_len = 1;
  for (; cur_len < max_length; ++cur_len) {
    at::Tensor logp = at::log_softmax(decode(cache, last).select(1, 0), -1);
    logp = logp + at::tensor(beam_scores, at::kDouble).to(at::kFloat).view({N, 1});
    auto top = at::topk(logp.view({B, K * V}), 2 * K, /*dim=*/1);
    at::Tensor top_scores = std::get<0>(top).contiguous(), top_idx = std::get<1>(top).contiguous();
    const float* sc = top_scores.data_ptr<float>();
    const std::int64_t* ix = top_idx.data_ptr<std::int64_t>();

    std::vector<std::int64_t> source_rows(N), next_tokens(N);
    std::vector<double> next_scores(N);
    for (std::int64_t b = 0; b < B; ++b) {
      if (row_done[b]) {   // HF keeps feeding padding into finished rows
        for (std::int64_t k = 0; k < K; ++k) {
          source_rows[b * K + k] = b * K;
          next_tokens[b * K + k] = kPad;
          next_scores[b * K + k] = 0;
        }
        continue;
      }
      std::int64_t filled = 0;
      for (std::int64_t rank = 0; rank < 2 * K && filled < K; ++rank) {
        const double s = sc[b * 2 * K + rank];
        const std::int64_t beam = ix[b * 2 * K + rank] / V, token = ix[b * 2 * K + rank] % V;
        const std::int64_t row = b * K + beam;
        if (token == kEos) {
          if (rank >= K) continue;   // only EOS among the top num_beams candidates finishes a beam
          std::vector<std::int64_t> tokens = seqs[row];
          tokens.push_back(kEos);
          finished[b].add(std::move(tokens), s / static_cast<double>(cur_len));
        } else {
          source_rows[b * K + filled] = row;
          next_tokens[b * K + filled] = token;
          next_scores[b * K + filled] = s;
          ++filled;
        }
      }
      row_done[b] = finished[b].done(sc[b * 2 * K], cur_len);
    }
    std::vector<std::vector<std::int64_t>> next_seqs(N);
    for (std::int64_t r = 0; r < N; ++r) {
      next_seqs[r] = seqs[source_rows[r]];
      next_seqs[r].push_back(next_tokens[r]);
    }
    seqs = std::move(next_seqs);
    beam_scores = next_scores;
    if (std::all_of(row_done.begin(), row_done.end(), [](bool d) { return d; })) break;
    cache.select_rows(at::tensor(source_rows, at::kLong));
    last = at::tensor(next_tokens, at::kLong).view({N, 1});
  }
  std::vector<std::vector<BeamHypothesis>> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    if (!row_done[b])   // max_length reached: the running beams compete with the finished ones
      for (std::int64_t k = 0; k < K; ++k)
        finished[b].add(seqs[b * K + k], beam_scores[b * K + k] / static_cast<double>(seqs[b * K + k].size()));
    auto& hyps = finished[b].hyps;
    std::stable_sort(hyps.begin(), hyps.end(), [](const auto& a, const auto& c) { return a.score > c.score; });
    hyps.resize(std::min<std::size_t>(hyps.size(), static_cast<std::size_t>(num_return)));
    out[b] = std::move(hyps);
  }
  return out;
}

}  // namespace lvmflow

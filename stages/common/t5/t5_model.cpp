#include "stages/common/t5/t5_model.hpp"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "pipeline/error.hpp"

namespace lvmflow {

LinearOp::LinearOp(const at::Tensor& weight_fp32, ComputeDType dtype) {
  switch (dtype) {
    case ComputeDType::Float32: weight_ = weight_fp32.contiguous(); break;
    case ComputeDType::BFloat16: weight_ = weight_fp32.to(at::kBFloat16).contiguous(); break;
    case ComputeDType::Int8Dynamic: {
      // Symmetric per-output-channel int8 weights; oneDNN quantises activations per call.
      auto& ctx = at::globalContext();
      const auto& engines = ctx.supportedQEngines();
      if (std::find(engines.begin(), engines.end(), at::kONEDNN) == engines.end())
        throw Error("dtype int8", "this libtorch has no oneDNN quantized engine", "use dtype float32 or bfloat16");
      if (ctx.qEngine() != at::kONEDNN) ctx.setQEngine(at::kONEDNN);
      at::Tensor scales = (weight_fp32.abs().amax(1) / 127.0).clamp_min(1e-8).to(at::kDouble);
      at::Tensor zeros = at::zeros({weight_fp32.size(0)}, at::kLong);
      at::Tensor q = at::quantize_per_channel(weight_fp32, scales, zeros, 0, at::kQInt8);
      static const auto prepack = c10::Dispatcher::singleton()
                                      .findSchemaOrThrow("quantized::linear_prepack", "")
                                      .typed<c10::intrusive_ptr<LinearPackedParamsBase>(at::Tensor, c10::optional<at::Tensor>)>();
      packed_ = c10::IValue(prepack.call(q, c10::nullopt));
      break;
    }
  }
}

at::Tensor LinearOp::operator()(const at::Tensor& x) const {
  if (packed_.isCustomClass()) {
    auto sizes = x.sizes().vec();
    at::Tensor y = packed_.toCustomClass<LinearPackedParamsBase>()->apply_dynamic(x.reshape({-1, sizes.back()}), false);
    sizes.back() = y.size(-1);
    return y.view(sizes);
  }
  if (weight_.scalar_type() == at::kFloat) return at::linear(x, weight_);
  return at::linear(x.to(weight_.scalar_type()), weight_).to(at::kFloat);
}

at::Tensor LinearOp::with_relu(const at::Tensor& x) const {
  if (packed_.isCustomClass()) {
    auto sizes = x.sizes().vec();
    at::Tensor y =
        packed_.toCustomClass<LinearPackedParamsBase>()->apply_dynamic_relu(x.reshape({-1, sizes.back()}), false);
    sizes.back() = y.size(-1);
    return y.view(sizes);
  }
  return (*this)(x).relu_();
}

namespace {

// T5 layer norm: scale only, no mean subtraction, no bias; float32 throughout.
at::Tensor rms_norm(const T5Config& config, const at::Tensor& x, const at::Tensor& weight) {
  return x * at::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + config.layer_norm_eps) * weight;
}

// Additive attention bias for a key mask [N, S] (1 = attend): [N, 1, 1, S].
at::Tensor mask_bias(const at::Tensor& mask) {
  return ((1 - mask.to(at::kFloat)) * std::numeric_limits<float>::lowest()).view({mask.size(0), 1, 1, mask.size(1)});
}

// int8 keeps the q/k/v projections in bfloat16: T5's attention logits are not scaled by
// 1/sqrt(d_kv), so int8 error in q and k is amplified; on GTR-T5-base-sized weights this
// lifts the worst-row cosine to float32 from 0.978 to 0.993 (docs/benchmarks/encode.md).
ComputeDType attention_dtype(ComputeDType dtype) {
  return dtype == ComputeDType::Int8Dynamic ? ComputeDType::BFloat16 : dtype;
}

// "[q; k; v]" (or "[k; v]") of one attention block, stacked for one matmul.
at::Tensor stacked(const CheckpointTensors& t, const std::string& p, std::initializer_list<const char*> names,
                   std::int64_t rows, std::int64_t cols) {
  std::vector<at::Tensor> parts;
  for (const char* n : names) parts.push_back(t.get(p + n + ".weight", {rows, cols}));
  return at::cat(parts);
}

// [N, L, inner] -> [N, H, L, d_kv] and back.
at::Tensor split_heads(const T5Config& c, const at::Tensor& x) {
  return x.view({x.size(0), x.size(1), c.num_heads, c.d_kv}).transpose(1, 2);
}
at::Tensor merge_heads(const T5Config& c, const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), c.inner_dim()});
}

// T5 folds 1/sqrt(d_kv) into its initialisation: scores are not scaled.
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  return at::matmul(at::softmax(at::matmul(q, k.transpose(-1, -2)) + bias, -1), v);
}

}  // namespace

at::Tensor t5_position_bias(const T5Config& config, const at::Tensor& table, std::int64_t q_len, std::int64_t k_len,
                            std::int64_t q_offset, bool bidirectional) {
  // Exact buckets for small distances, then logarithmic up to max_distance. Same float32
  // arithmetic as HF so bucket boundaries agree exactly.
  const auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor rel = at::arange(k_len, opts).unsqueeze(0) - (at::arange(q_len, opts) + q_offset).unsqueeze(1);
  std::int64_t buckets = config.num_buckets;
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
                                  std::log(static_cast<double>(config.max_distance) / static_cast<double>(max_exact)) *
                                  static_cast<double>(buckets - max_exact))
                                     .to(at::kLong);
  large = at::clamp_max(large, buckets - 1);
  at::Tensor bucket = result + at::where(n < max_exact, n, large);
  return table.index_select(0, bucket.reshape({-1})).view({q_len, k_len, -1}).permute({2, 0, 1}).unsqueeze(0);
}

T5FeedForward::T5FeedForward(const T5Config& c, const CheckpointTensors& t, const std::string& p, ComputeDType dtype) {
  const std::int64_t d = c.d_model, ff = c.d_ff;
  norm = t.get(p + "layer_norm.weight", {d});
  wi = LinearOp(c.gated ? stacked(t, p + "DenseReluDense.", {"wi_0", "wi_1"}, ff, d)
                        : t.get(p + "DenseReluDense.wi.weight", {ff, d}),
                dtype);
  wo = LinearOp(t.get(p + "DenseReluDense.wo.weight", {d, ff}), dtype);
}

at::Tensor T5FeedForward::operator()(const T5Config& c, const at::Tensor& x) const {
  const at::Tensor n = rms_norm(c, x, norm);
  at::Tensor h;
  if (c.gated) {
    // gated-gelu: GELU (tanh approximation, HF's "gelu_new") of wi_0 times wi_1.
    h = wi(n);
    h = at::gelu(h.narrow(-1, 0, c.d_ff), "tanh") * h.narrow(-1, c.d_ff, c.d_ff);
  } else {
    h = wi.with_relu(n);
  }
  return wo(h);
}

T5EncoderStack::T5EncoderStack(const T5Config& config, const CheckpointTensors& w, const std::string& prefix,
                               ComputeDType dtype)
    : config_(config) {
  const std::int64_t d = config.d_model, inner = config.inner_dim();
  // T5EncoderModel checkpoints hold shared.weight; some exports keep only the tied copy.
  embedding_ = w.get(prefix + (w.has(prefix + "shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight"),
                     {config.vocab_size, d});
  relative_bias_ = w.get(prefix + "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                         {config.num_buckets, config.num_heads});
  final_norm_ = w.get(prefix + "encoder.final_layer_norm.weight", {d});
  for (std::int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = prefix + "encoder.block." + std::to_string(i) + ".layer.";
    Layer l;
    l.attn_norm = w.get(p + "0.layer_norm.weight", {d});
    l.qkv = LinearOp(stacked(w, p + "0.SelfAttention.", {"q", "k", "v"}, inner, d), attention_dtype(dtype));
    l.out = LinearOp(w.get(p + "0.SelfAttention.o.weight", {d, inner}), dtype);
    l.ff = T5FeedForward(config, w, p + "1.", dtype);
    layers_.push_back(std::move(l));
  }
}

at::Tensor T5EncoderStack::embed(const at::Tensor& ids) const {
  return embedding_.index_select(0, ids.reshape({-1})).view({ids.size(0), ids.size(1), config_.d_model});
}

at::Tensor T5EncoderStack::forward_embeds(const at::Tensor& inputs_embeds, const at::Tensor& mask) const {
  const std::int64_t B = inputs_embeds.size(0), L = inputs_embeds.size(1);
  const std::int64_t H = config_.num_heads, dkv = config_.d_kv, inner = config_.inner_dim();
  at::Tensor x = inputs_embeds.to(at::kFloat);
  // Position bias from layer 0's table, shared by all layers, plus the padding mask, as one
  // [B*H, L, L] tensor so that baddbmm adds it while computing the scores.
  at::Tensor bias = (t5_position_bias(config_, relative_bias_, L, L, 0, /*bidirectional=*/true) + mask_bias(mask))
                        .reshape({B * H, L, L})
                        .contiguous();
  for (const Layer& layer : layers_) {
    at::Tensor n = rms_norm(config_, x, layer.attn_norm);
    at::Tensor qkv = layer.qkv(n).view({B, L, 3, H, dkv}).permute({2, 0, 3, 1, 4});  // [3,B,H,L,dkv]
    at::Tensor q = qkv[0].reshape({B * H, L, dkv});
    at::Tensor k = qkv[1].reshape({B * H, L, dkv});
    at::Tensor v = qkv[2].reshape({B * H, L, dkv});
    at::Tensor attn = at::softmax(at::baddbmm(bias, q, k.transpose(1, 2)), -1);   // unscaled, as in T5
    at::Tensor ctx = at::bmm(attn, v).view({B, H, L, dkv}).transpose(1, 2).reshape({B, L, inner});
    x = x + layer.out(ctx);
    x = x + layer.ff(config_, x);
  }
  return rms_norm(config_, x, final_norm_);
}

void T5DecoderCache::select_rows(const at::Tensor& rows) {
  for (auto* list : {&self_k, &self_v, &cross_k, &cross_v})
    for (at::Tensor& x : *list) x = x.index_select(0, rows);
  cross_bias = cross_bias.index_select(0, rows);
}

T5DecoderStack::T5DecoderStack(const T5Config& config, std::int64_t layers, const CheckpointTensors& w,
                               const std::string& prefix, at::Tensor embedding, ComputeDType dtype)
    : config_(config), embedding_(std::move(embedding)) {
  const std::int64_t d = config.d_model, inner = config.inner_dim();
  relative_bias_ = w.get(prefix + "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                         {config.num_buckets, config.num_heads});
  final_norm_ = w.get(prefix + "decoder.final_layer_norm.weight", {d});
  for (std::int64_t i = 0; i < layers; ++i) {
    const std::string p = prefix + "decoder.block." + std::to_string(i) + ".layer.";
    Layer l;
    l.self_norm = w.get(p + "0.layer_norm.weight", {d});
    l.self_qkv = LinearOp(stacked(w, p + "0.SelfAttention.", {"q", "k", "v"}, inner, d), attention_dtype(dtype));
    l.self_out = LinearOp(w.get(p + "0.SelfAttention.o.weight", {d, inner}), dtype);
    l.cross_norm = w.get(p + "1.layer_norm.weight", {d});
    l.cross_q = LinearOp(w.get(p + "1.EncDecAttention.q.weight", {inner, d}), attention_dtype(dtype));
    l.cross_kv = LinearOp(stacked(w, p + "1.EncDecAttention.", {"k", "v"}, inner, d), attention_dtype(dtype));
    l.cross_out = LinearOp(w.get(p + "1.EncDecAttention.o.weight", {d, inner}), dtype);
    l.ff = T5FeedForward(config, w, p + "2.", dtype);
    layers_.push_back(std::move(l));
  }
}

T5DecoderCache T5DecoderStack::start(const at::Tensor& encoded, const at::Tensor& mask) const {
  const std::int64_t inner = config_.inner_dim();
  T5DecoderCache cache;
  cache.cross_bias = mask_bias(mask);
  for (const Layer& l : layers_) {
    at::Tensor kv = l.cross_kv(encoded);
    cache.cross_k.push_back(split_heads(config_, kv.narrow(-1, 0, inner)).contiguous());
    cache.cross_v.push_back(split_heads(config_, kv.narrow(-1, inner, inner)).contiguous());
    cache.self_k.emplace_back();
    cache.self_v.emplace_back();
  }
  return cache;
}

at::Tensor T5DecoderStack::step(T5DecoderCache& cache, const at::Tensor& tokens) const {
  const std::int64_t T = tokens.size(1), past = cache.length, inner = config_.inner_dim();
  at::Tensor bias = t5_position_bias(config_, relative_bias_, T, past + T, past, /*bidirectional=*/false);
  if (T > 1) {   // causal mask among the new positions
    at::Tensor future = at::arange(past + T).unsqueeze(0) > (at::arange(T) + past).unsqueeze(1);
    bias = bias.masked_fill(future, std::numeric_limits<float>::lowest());
  }
  at::Tensor x = embedding_.index_select(0, tokens.reshape({-1})).view({tokens.size(0), T, config_.d_model});
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    at::Tensor qkv = l.self_qkv(rms_norm(config_, x, l.self_norm));
    at::Tensor q = split_heads(config_, qkv.narrow(-1, 0, inner));
    at::Tensor k = split_heads(config_, qkv.narrow(-1, inner, inner));
    at::Tensor v = split_heads(config_, qkv.narrow(-1, 2 * inner, inner));
    if (past > 0) {
      k = at::cat({cache.self_k[i], k}, 2);
      v = at::cat({cache.self_v[i], v}, 2);
    }
    cache.self_k[i] = k;
    cache.self_v[i] = v;
    x = x + l.self_out(merge_heads(config_, attend(q, k, v, bias)));

    q = split_heads(config_, l.cross_q(rms_norm(config_, x, l.cross_norm)));
    x = x + l.cross_out(merge_heads(config_, attend(q, cache.cross_k[i], cache.cross_v[i], cache.cross_bias)));
    x = x + l.ff(config_, x);
  }
  cache.length += T;
  return rms_norm(config_, x, final_norm_);
}

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

T5EncoderDecoder::T5EncoderDecoder(const CheckpointTensors& t, const std::string& prefix, const T5Seq2SeqArch& arch,
                                   ComputeDType dtype)
    : arch_(arch),
      encoder_(arch.config, t, prefix, dtype),
      decoder_(arch.config, arch.decoder_layers, t, prefix, encoder_.embedding(), dtype),
      // The LM head multiplies with the embedding table when tied.
      lm_head_(arch.tied_lm_head ? encoder_.embedding()
                                 : t.get(prefix + "lm_head.weight", {arch.config.vocab_size, arch.config.d_model}),
               dtype) {}

at::Tensor T5EncoderDecoder::decode(T5DecoderCache& cache, const at::Tensor& tokens) const {
  at::Tensor x = decoder_.step(cache, tokens);
  if (arch_.tied_lm_head) x = x * std::pow(static_cast<double>(d_model()), -0.5);
  return lm_head_(x);
}

at::Tensor T5EncoderDecoder::decoder_logits(const at::Tensor& encoded, const at::Tensor& mask,
                                            const at::Tensor& decoder_ids) const {
  T5DecoderCache cache = start_decoder(encoded, mask);
  return decode(cache, decoder_ids);
}

}  // namespace lvmflow

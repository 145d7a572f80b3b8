#include "stages/encode/t5_model.hpp"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/native/quantized/PackedParams.h>

#include <algorithm>
#include <cmath>

#include "pipeline/error.hpp"
#include "stages/common/safetensors.hpp"
#include "stages/encode/torch_checkpoint.hpp"

namespace lvmflow {

namespace {

std::string shape_text(at::IntArrayRef shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

class SafetensorsWeights : public WeightFile {
 public:
  explicit SafetensorsWeights(const std::filesystem::path& p) : file_(p) {}
  const std::filesystem::path& path() const override { return file_.path(); }
  bool has(const std::string& name) const override { return file_.contains(name); }
  at::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const override {
    const TensorView& t = file_.tensor(name, shape);
    at::ScalarType st;
    switch (t.dtype) {
      case DType::F32: st = at::kFloat; break;
      case DType::F16: st = at::kHalf; break;
      case DType::BF16: st = at::kBFloat16; break;
      default:
        throw Error(file_.path().string(), "tensor '" + name + "' has dtype " + to_string(t.dtype),
                    "model weights must be F32, F16 or BF16");
    }
    // from_blob views the mapped file; the copy makes the weights independent of the mapping.
    return at::from_blob(const_cast<std::uint8_t*>(t.data), shape, at::TensorOptions().dtype(st))
        .to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
  }

 private:
  SafetensorsFile file_;
};

class TorchBinWeights : public WeightFile {
 public:
  explicit TorchBinWeights(const std::filesystem::path& p) : path_(p), tensors_(load_torch_state_dict(p)) {}
  const std::filesystem::path& path() const override { return path_; }
  bool has(const std::string& name) const override { return tensors_.count(name) != 0; }
  at::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const override {
    auto it = tensors_.find(name);
    if (it == tensors_.end())
      throw Error(path_.string(), "tensor '" + name + "' is missing",
                  "the file does not match the expected model layout");
    if (it->second.sizes() != at::IntArrayRef(shape))
      throw Error(path_.string(), "tensor '" + name + "' has shape " + shape_text(it->second.sizes()) +
                                      ", expected " + shape_text(shape),
                  "the weights do not match the model config");
    if (!it->second.is_floating_point())
      throw Error(path_.string(), "tensor '" + name + "' is not a floating-point tensor");
    return it->second.to(at::kFloat).contiguous();
  }

 private:
  std::filesystem::path path_;
  std::map<std::string, at::Tensor> tensors_;
};

}  // namespace

std::unique_ptr<WeightFile> WeightFile::open(const std::filesystem::path& folder) {
  if (std::filesystem::exists(folder / "model.safetensors"))
    return std::make_unique<SafetensorsWeights>(folder / "model.safetensors");
  if (std::filesystem::exists(folder / "pytorch_model.bin"))
    return std::make_unique<TorchBinWeights>(folder / "pytorch_model.bin");
  throw Error((folder / "model.safetensors").string(),
              "missing weights: neither model.safetensors nor pytorch_model.bin is in " + folder.string(),
              "copy the weight file from the published model folder");
}

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

T5EncoderStack::T5EncoderStack(const T5Config& config, const WeightFile& w, ComputeDType dtype)
    : config_(config) {
  const std::int64_t d = config.d_model, inner = config.inner_dim(), ff = config.d_ff;
  // T5EncoderModel checkpoints hold shared.weight; some exports keep only the tied copy.
  embedding_ = w.get(w.has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight",
                     {config.vocab_size, d});
  relative_bias_ = w.get("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                         {config.num_buckets, config.num_heads});
  final_norm_ = w.get("encoder.final_layer_norm.weight", {d});
  // int8 keeps the q/k/v projections in bfloat16: T5's attention logits are not scaled by
  // 1/sqrt(d_kv), so int8 error in q and k is amplified; on GTR-T5-base-sized weights this
  // lifts the worst-row cosine to float32 from 0.978 to 0.993 (docs/benchmarks/encode.md).
  const ComputeDType qkv_dtype = dtype == ComputeDType::Int8Dynamic ? ComputeDType::BFloat16 : dtype;
  for (std::int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    Layer l;
    l.attn_norm = w.get(p + "0.layer_norm.weight", {d});
    l.qkv = LinearOp(at::cat({w.get(p + "0.SelfAttention.q.weight", {inner, d}),
                              w.get(p + "0.SelfAttention.k.weight", {inner, d}),
                              w.get(p + "0.SelfAttention.v.weight", {inner, d})}),
                     qkv_dtype);
    l.out = LinearOp(w.get(p + "0.SelfAttention.o.weight", {d, inner}), dtype);
    l.ff_norm = w.get(p + "1.layer_norm.weight", {d});
    if (config.gated) {
      l.wi = LinearOp(at::cat({w.get(p + "1.DenseReluDense.wi_0.weight", {ff, d}),
                               w.get(p + "1.DenseReluDense.wi_1.weight", {ff, d})}),
                      dtype);
    } else {
      l.wi = LinearOp(w.get(p + "1.DenseReluDense.wi.weight", {ff, d}), dtype);
    }
    l.wo = LinearOp(w.get(p + "1.DenseReluDense.wo.weight", {d, ff}), dtype);
    layers_.push_back(std::move(l));
  }
}

at::Tensor T5EncoderStack::position_buckets(std::int64_t q_len, std::int64_t k_len) const {
  const std::int64_t half = config_.num_buckets / 2;  // bidirectional: half per direction
  const std::int64_t max_exact = half / 2;
  auto opts = at::TensorOptions().dtype(at::kLong);
  at::Tensor rel = at::arange(k_len, opts).unsqueeze(0) - at::arange(q_len, opts).unsqueeze(1);  // key - query
  at::Tensor buckets = (rel > 0).to(at::kLong) * half;
  at::Tensor n = rel.abs();
  // Same float32 arithmetic as HF, so bucket boundaries agree exactly.
  at::Tensor large =
      max_exact + (at::log(n.to(at::kFloat) / static_cast<double>(max_exact)) /
                   std::log(static_cast<double>(config_.max_distance) / static_cast<double>(max_exact)) *
                   static_cast<double>(half - max_exact))
                      .to(at::kLong);
  large = at::clamp_max(large, half - 1);
  return buckets + at::where(n < max_exact, n, large);
}

at::Tensor T5EncoderStack::rms_norm(const at::Tensor& x, const at::Tensor& weight) const {
  // T5 layer norm: scale only, no mean subtraction, no bias; float32 throughout.
  at::Tensor var = x.pow(2).mean(-1, /*keepdim=*/true);
  return x * at::rsqrt(var + config_.layer_norm_eps) * weight;
}

at::Tensor T5EncoderStack::forward(const at::Tensor& ids, const at::Tensor& mask) const {
  const std::int64_t B = ids.size(0), L = ids.size(1);
  const std::int64_t H = config_.num_heads, dkv = config_.d_kv, inner = config_.inner_dim();
  const std::int64_t ff = config_.d_ff;
  // No sqrt(d_model) scaling of the embedding in T5.
  at::Tensor x = embedding_.index_select(0, ids.reshape({-1})).view({B, L, config_.d_model});

  // Position bias from layer 0's table, shared by all layers, plus the padding mask
  // (a large negative number on padded keys), as one [B*H, L, L] tensor.
  at::Tensor bias = relative_bias_.index_select(0, position_buckets(L, L).reshape({-1}))
                        .view({L, L, H})
                        .permute({2, 0, 1})
                        .unsqueeze(0);  // [1, H, L, L]
  at::Tensor pad = (1 - mask.to(at::kFloat)).view({B, 1, 1, L}) * std::numeric_limits<float>::lowest();
  bias = (bias + pad).reshape({B * H, L, L}).contiguous();

  for (const Layer& layer : layers_) {
    at::Tensor n = rms_norm(x, layer.attn_norm);
    at::Tensor qkv = layer.qkv(n).view({B, L, 3, H, dkv}).permute({2, 0, 3, 1, 4});  // [3,B,H,L,dkv]
    at::Tensor q = qkv[0].reshape({B * H, L, dkv});
    at::Tensor k = qkv[1].reshape({B * H, L, dkv});
    at::Tensor v = qkv[2].reshape({B * H, L, dkv});
    // T5 folds the 1/sqrt(d_kv) into its initialisation: no scaling here.
    at::Tensor scores = at::baddbmm(bias, q, k.transpose(1, 2));
    at::Tensor attn = at::softmax(scores, -1);
    at::Tensor ctx = at::bmm(attn, v).view({B, H, L, dkv}).transpose(1, 2).reshape({B, L, inner});
    x = x + layer.out(ctx);

    n = rms_norm(x, layer.ff_norm);
    at::Tensor h;
    if (config_.gated) {
      // gated-gelu: GELU (tanh approximation, HF's "gelu_new") of wi_0 times wi_1.
      h = layer.wi(n);
      h = at::gelu(h.narrow(-1, 0, ff), "tanh") * h.narrow(-1, ff, ff);
    } else {
      h = layer.wi.with_relu(n);
    }
    x = x + layer.wo(h);
  }
  return rms_norm(x, final_norm_);
}

}  // namespace lvmflow

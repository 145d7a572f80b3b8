#include "stages/lvm/lvm_models.hpp"

#include <dlfcn.h>

#include <cmath>

#include "pipeline/error.hpp"

namespace lvmflow {
namespace F = torch::nn::functional;

void set_compute_threads(int threads) {
  if (threads < 1) return;
  torch::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto openblas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) openblas(threads);
}

std::int64_t LvmModel::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

namespace {

torch::Tensor l2_normalize(const torch::Tensor& x) {
  return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(-1).eps(1e-12));
}

// lstm: 2 LSTM layers (hidden 512, dropout 0.2 between them) over the raw context, last step
// -> Linear(512 -> D).
class LstmModel : public LvmModel {
 public:
  explicit LstmModel(const ModelConfig& c) : LvmModel(c) {
    lstm_ = register_module("lstm", torch::nn::LSTM(torch::nn::LSTMOptions(c.input_dim, c.hidden)
                                                        .num_layers(c.layers)
                                                        .batch_first(true)
                                                        .dropout(c.layers > 1 ? c.dropout : 0.0)));
    output_proj_ = register_module("output_proj", torch::nn::Linear(c.hidden, c.input_dim));
  }
  torch::Tensor forward(const torch::Tensor& context) override {
    auto out = std::get<0>(lstm_->forward(context));
    return l2_normalize(output_proj_->forward(out.select(1, -1)));
  }

 private:
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::Linear output_proj_{nullptr};
};

// One GRU layer with a residual connection and a LayerNorm after it.
class GruBlock : public torch::nn::Module {
 public:
  explicit GruBlock(std::int64_t width) {
    gru_ = register_module("gru", torch::nn::GRU(torch::nn::GRUOptions(width, width).batch_first(true)));
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }
  torch::Tensor forward(const torch::Tensor& x) { return norm_->forward(x + std::get<0>(gru_->forward(x))); }

 private:
  torch::nn::GRU gru_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};

// gru: Linear(D -> 512), 4 GRU blocks, last step -> Linear(512 -> D).
class GruModel : public LvmModel {
 public:
  explicit GruModel(const ModelConfig& c) : LvmModel(c) {
    input_proj_ = register_module("input_proj", torch::nn::Linear(c.input_dim, c.hidden));
    auto list = register_module("blocks", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.layers; ++i) {
      blocks_.push_back(std::make_shared<GruBlock>(c.hidden));
      list->push_back(blocks_.back());
    }
    output_proj_ = register_module("output_proj", torch::nn::Linear(c.hidden, c.input_dim));
  }
  torch::Tensor forward(const torch::Tensor& context) override {
    auto x = input_proj_->forward(context);
    for (auto& block : blocks_) x = block->forward(x);
    return l2_normalize(output_proj_->forward(x.select(1, -1)));
  }

 private:
  torch::nn::Linear input_proj_{nullptr}, output_proj_{nullptr};
  std::vector<std::shared_ptr<GruBlock>> blocks_;
};

// Multi-head attention with the parameter layout of torch.nn.MultiheadAttention
// (in_proj_weight [3E, E], in_proj_bias [3E], out_proj), computed the way its reference path
// does: q scaled by 1/sqrt(head_dim), additive float mask, softmax, dropout on the weights.
class Attention : public torch::nn::Module {
 public:
  Attention(std::int64_t width, std::int64_t heads, double dropout) : width_(width), heads_(heads), dropout_(dropout) {
    in_proj_weight_ = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
    in_proj_bias_ = register_parameter("in_proj_bias", torch::zeros({3 * width}));
    out_proj_ = register_module("out_proj", torch::nn::Linear(width, width));
    torch::NoGradGuard no_grad;
    torch::nn::init::xavier_uniform_(in_proj_weight_);
    torch::nn::init::zeros_(out_proj_->bias);
  }

  // query [B, Tq, E] attends over source [B, Ts, E]; mask [Tq, Ts] additive (or undefined).
  torch::Tensor forward(const torch::Tensor& query, const torch::Tensor& source, const torch::Tensor& mask) {
    torch::Tensor q, k, v;
    if (query.is_same(source)) {
      auto qkv = F::linear(query, in_proj_weight_, in_proj_bias_).chunk(3, -1);
      q = qkv[0], k = qkv[1], v = qkv[2];
    } else {
      q = F::linear(query, in_proj_weight_.narrow(0, 0, width_), in_proj_bias_.narrow(0, 0, width_));
      auto kv = F::linear(source, in_proj_weight_.narrow(0, width_, 2 * width_),
                          in_proj_bias_.narrow(0, width_, 2 * width_)).chunk(2, -1);
      k = kv[0], v = kv[1];
    }
    const auto batch = query.size(0), tq = query.size(1), ts = source.size(1);
    const auto head_dim = width_ / heads_;
    q = q.reshape({batch, tq, heads_, head_dim}).transpose(1, 2) / std::sqrt(static_cast<double>(head_dim));
    k = k.reshape({batch, ts, heads_, head_dim}).transpose(1, 2);
    v = v.reshape({batch, ts, heads_, head_dim}).transpose(1, 2);
    auto scores = q.matmul(k.transpose(-2, -1));
    if (mask.defined()) scores = scores + mask;
    auto weights = scores.softmax(-1);
    if (is_training() && dropout_ > 0) weights = F::dropout(weights, F::DropoutFuncOptions().p(dropout_).training(true));
    auto out = weights.matmul(v).transpose(1, 2).reshape({batch, tq, width_});
    return out_proj_->forward(out);
  }

 private:
  std::int64_t width_, heads_;
  double dropout_;
  torch::Tensor in_proj_weight_, in_proj_bias_;
  torch::nn::Linear out_proj_{nullptr};
};

// torch.nn.TransformerDecoderLayer, post-norm, ReLU: self-attention, cross-attention over
// `memory`, feed-forward; each added back and then LayerNorm-ed.
class DecoderLayer : public torch::nn::Module {
 public:
  DecoderLayer(std::int64_t width, std::int64_t heads, std::int64_t ff, double dropout) : dropout_(dropout) {
    self_attn_ = register_module("self_attn", std::make_shared<Attention>(width, heads, dropout));
    multihead_attn_ = register_module("multihead_attn", std::make_shared<Attention>(width, heads, dropout));
    linear1_ = register_module("linear1", torch::nn::Linear(width, ff));
    linear2_ = register_module("linear2", torch::nn::Linear(ff, width));
    norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
    norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
    norm3_ = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  }

  // last_only: compute only the last position (what the model reads from the final layer).
  // Under the causal mask the last row attends to everything, so it needs no mask.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& memory, const torch::Tensor& causal_mask,
                        bool last_only) {
    torch::Tensor query = last_only ? x.narrow(1, x.size(1) - 1, 1) : x;
    torch::Tensor mask = last_only ? torch::Tensor() : causal_mask;
    auto h = norm1_->forward(query + drop(self_attn_->forward(query, x, mask)));
    h = norm2_->forward(h + drop(multihead_attn_->forward(h, memory, mask)));
    auto ff = linear2_->forward(drop(torch::relu(linear1_->forward(h))));
    return norm3_->forward(h + drop(ff));
  }

 private:
  torch::Tensor drop(const torch::Tensor& t) {
    if (!is_training() || dropout_ <= 0) return t;
    return F::dropout(t, F::DropoutFuncOptions().p(dropout_).training(true));
  }
  double dropout_;
  std::shared_ptr<Attention> self_attn_, multihead_attn_;
  torch::nn::Linear linear1_{nullptr}, linear2_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr};
};

torch::Tensor sinusoidal_positions(std::int64_t length, std::int64_t width) {
  auto position = torch::arange(length, torch::kFloat32).unsqueeze(1);
  auto div = torch::exp(torch::arange(0, width, 2, torch::kFloat32) * (-std::log(10000.0) / width));
  auto pe = torch::zeros({length, width});
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(0, torch::indexing::None, 2)}, torch::sin(position * div));
  pe.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, torch::indexing::None, 2)},
                torch::cos(position * div).narrow(1, 0, width / 2));
  return pe;
}

// transformer: Linear(D -> 512) + sinusoidal positions; 4 decoder layers whose self- and
// cross-attention both read the projected sequence under a causal mask; last step -> head
// Linear(512 -> 512), GELU, LayerNorm, Linear(512 -> D).
class TransformerModel : public LvmModel {
 public:
  explicit TransformerModel(const ModelConfig& c) : LvmModel(c) {
    input_proj_ = register_module("input_proj", torch::nn::Linear(c.input_dim, c.hidden));
    auto list = register_module("layers", torch::nn::ModuleList());
    for (std::int64_t i = 0; i < c.layers; ++i) {
      layers_.push_back(std::make_shared<DecoderLayer>(c.hidden, c.heads, c.ff, c.dropout));
      list->push_back(layers_.back());
    }
    head_ = register_module("head", torch::nn::Sequential(
                                        torch::nn::Linear(c.hidden, c.hidden), torch::nn::GELU(),
                                        torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden})),
                                        torch::nn::Linear(c.hidden, c.input_dim)));
    positions_ = sinusoidal_positions(kCachedPositions, c.hidden);
  }
  torch::Tensor forward(const torch::Tensor& context) override {
    const auto length = context.size(1);
    auto pe = length <= kCachedPositions ? positions_.narrow(0, 0, length) : sinusoidal_positions(length, config_.hidden);
    auto memory = input_proj_->forward(context) + pe;
    auto mask = torch::full({length, length}, -std::numeric_limits<float>::infinity()).triu(1);
    auto x = memory;
    for (std::size_t i = 0; i < layers_.size(); ++i) x = layers_[i]->forward(x, memory, mask, i + 1 == layers_.size());
    return l2_normalize(head_->forward(x.select(1, -1)));
  }

 private:
  static constexpr std::int64_t kCachedPositions = 64;
  torch::nn::Linear input_proj_{nullptr};
  std::vector<std::shared_ptr<DecoderLayer>> layers_;
  torch::nn::Sequential head_{nullptr};
  torch::Tensor positions_;   // not a buffer: derived, so not part of the checkpoint
};

// amn: residual over the linear-average baseline. Attention (query from the baseline, keys
// from each context vector, one head, scaled by 1/sqrt(width)) mixes the raw context vectors;
// an MLP over [baseline, mixed] predicts a correction added to the baseline. The MLP's last
// layer starts at zero, so the untrained model *is* the linear-average baseline and training
// only has to learn the correction.
class AmnModel : public LvmModel {
 public:
  explicit AmnModel(const ModelConfig& c) : LvmModel(c) {
    key_proj_ = register_module("key_proj", torch::nn::Linear(c.input_dim, c.hidden));
    query_proj_ = register_module("query_proj", torch::nn::Linear(c.input_dim, c.hidden));
    auto out = torch::nn::Linear(c.ff / 2, c.input_dim);
    residual_mlp_ = register_module(
        "residual_mlp",
        torch::nn::Sequential(torch::nn::Linear(2 * c.input_dim, c.ff), torch::nn::GELU(),
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.ff})),
                              torch::nn::Linear(c.ff, c.ff / 2), torch::nn::GELU(),
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.ff / 2})), out));
    torch::NoGradGuard no_grad;
    out->weight.zero_();
    out->bias.zero_();
    scale_ = 1.0 / std::sqrt(static_cast<double>(c.hidden));
  }
  torch::Tensor forward(const torch::Tensor& context) override {
    auto baseline = context.mean(1);
    // score_i = (W_k x_i + b_k) . q = x_i . (W_k^T q) + b_k . q. The last term is the same for
    // every i and softmax ignores it, so one [B, D] product replaces projecting all N context
    // vectors: same function, ~20% less work per query. (key_proj.bias therefore never gets a
    // gradient; it is kept so checkpoints match the PyTorch module.)
    auto query = query_proj_->forward(baseline);                          // [B, A]
    auto key_query = query.matmul(key_proj_->weight);                    // [B, D]
    auto weights = (context.bmm(key_query.unsqueeze(-1)).squeeze(-1) * scale_).softmax(-1);  // [B, N]
    auto mixed = weights.unsqueeze(1).bmm(context).squeeze(1);           // [B, D]
    auto residual = residual_mlp_->forward(torch::cat({baseline, mixed}, -1));
    return l2_normalize(baseline + residual);
  }

 private:
  torch::nn::Linear key_proj_{nullptr}, query_proj_{nullptr};
  torch::nn::Sequential residual_mlp_{nullptr};
  double scale_ = 1.0;
};

}  // namespace

std::shared_ptr<LvmModel> make_model(const ModelConfig& c) {
  const std::string where = "model '" + c.arch + "'";
  if (c.input_dim < 1 || c.hidden < 1)
    throw Error(where, "input_dim and hidden must be positive", "check the model config");
  if (c.arch == "lstm") return std::make_shared<LstmModel>(c);
  if (c.arch == "gru") return std::make_shared<GruModel>(c);
  if (c.arch == "transformer") {
    if (c.heads < 1 || c.hidden % c.heads != 0)
      throw Error(where, "hidden " + std::to_string(c.hidden) + " is not a multiple of heads " + std::to_string(c.heads),
                  "pick a hidden width divisible by the number of heads");
    return std::make_shared<TransformerModel>(c);
  }
  if (c.arch == "amn") {
    if (c.ff < 2) throw Error(where, "ff must be at least 2", "check the model config");
    return std::make_shared<AmnModel>(c);
  }
  throw Error(where, "unknown architecture", "use one of amn, lstm, gru, transformer");
}

}  // namespace lvmflow

#include "stages/lvm/fast_inference.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <vector>

#include "pipeline/error.hpp"

namespace lvmflow {
namespace {

// ---------------------------------------------------------------------------------------
// Element-wise arithmetic on float arrays. target_clones compiles an AVX-512 copy next to the
// portable one (picked at load time), so these loops vectorise 16 wide where the CPU can.
#define LVMFLOW_VECTOR_CLONES __attribute__((target_clones("avx512f", "default")))

// e^x within ~2 ulp on [-87, 88] (Cephes expf polynomial), without a libm call so that the
// loops around it vectorise.
inline float exp_approx(float x) {
  // Comparisons, not std::fmin/fmax: those are libm calls (NaN rules) and stop vectorisation.
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_approx(-x)); }
inline float tanh_approx(float x) { return 2.0f * sigmoid(2.0f * x) - 1.0f; }
// erf within 1.5e-7 (Abramowitz & Stegun 7.1.26).
inline float erf_approx(float x) {
  const float a = std::fabs(x), t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float y = 1.0f - poly * exp_approx(-a * a);
  return std::copysign(y, x);
}

// torch.nn.LSTM cell: gates [i f g o] (4H, both biases already in), c and h updated in place.
LVMFLOW_VECTOR_CLONES void lstm_cell(const float* gates, float* c, float* h, std::size_t width) {
  const float *i = gates, *f = gates + width, *g = gates + 2 * width, *o = gates + 3 * width;
  for (std::size_t j = 0; j < width; ++j) {
    c[j] = sigmoid(f[j]) * c[j] + sigmoid(i[j]) * tanh_approx(g[j]);
    h[j] = sigmoid(o[j]) * tanh_approx(c[j]);
  }
}

// torch.nn.GRU cell: gi = W_ih x + b_ih, gh = W_hh h + b_hh, both [r z n] (3H); h in place.
LVMFLOW_VECTOR_CLONES void gru_cell(const float* gi, const float* gh, float* h, std::size_t width) {
  for (std::size_t j = 0; j < width; ++j) {
    const float r = sigmoid(gi[j] + gh[j]);
    const float z = sigmoid(gi[width + j] + gh[width + j]);
    const float n = tanh_approx(gi[2 * width + j] + r * gh[2 * width + j]);
    h[j] = (1.0f - z) * n + z * h[j];
  }
}

LVMFLOW_VECTOR_CLONES void gelu(float* x, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) x[j] = 0.5f * x[j] * (1.0f + erf_approx(x[j] * 0.70710678118654752f));
}

LVMFLOW_VECTOR_CLONES void relu(float* x, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) x[j] = x[j] > 0.0f ? x[j] : 0.0f;
}

LVMFLOW_VECTOR_CLONES void add(float* x, const float* y, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) x[j] += y[j];
}

// x / max(|x|, 1e-12), as F::normalize.
LVMFLOW_VECTOR_CLONES void l2_normalize(float* x, std::size_t n) {
  float sum = 0;
  for (std::size_t j = 0; j < n; ++j) sum += x[j] * x[j];
  const float norm = std::sqrt(sum), inv = 1.0f / (norm > 1e-12f ? norm : 1e-12f);
  for (std::size_t j = 0; j < n; ++j) x[j] *= inv;
}

// torch.nn.LayerNorm (eps 1e-5, biased variance), in place.
LVMFLOW_VECTOR_CLONES void layer_norm(float* x, const float* weight, const float* bias, std::size_t width) {
  float mean = 0, var = 0;
  for (std::size_t j = 0; j < width; ++j) mean += x[j];
  mean /= float(width);
  for (std::size_t j = 0; j < width; ++j) var += (x[j] - mean) * (x[j] - mean);
  const float inv = 1.0f / std::sqrt(var / float(width) + 1e-5f);
  for (std::size_t j = 0; j < width; ++j) x[j] = (x[j] - mean) * inv * weight[j] + bias[j];
}

struct LayerNorm {
  std::vector<float> weight, bias;
  void apply(float* x, std::size_t width) const { layer_norm(x, weight.data(), bias.data(), width); }
  void apply_rows(float* x, std::size_t rows, std::size_t width) const {
    for (std::size_t r = 0; r < rows; ++r) apply(x + r * width, width);
  }
};

// ---------------------------------------------------------------------------------------
// A linear layer: the packed kernel for few rows (batch-1 steps), torch's GEMM for many.
// From ~32 rows the product is compute-bound, where OpenBLAS (float32) and oneDNN (bfloat16,
// AMX tiles on CPUs that have them) beat the packed matrix-vector kernel; int8 keeps its own
// kernel (VNNI) at every size.
class Linear {
 public:
  static constexpr std::size_t kGemmRows = 32;

  Linear() = default;
  // weight [out, in], bias [out] or undefined; float32 contiguous.
  Linear(const torch::Tensor& weight, const torch::Tensor& bias, LvmDType dtype)
      : packed_(weight.data_ptr<float>(), bias.defined() ? bias.data_ptr<float>() : nullptr, weight.size(0),
                weight.size(1), dtype) {
    if (dtype == LvmDType::Int8) return;
    weight_ = dtype == LvmDType::BFloat16 ? weight.to(torch::kBFloat16) : weight.clone();
    if (bias.defined()) bias_ = bias.clone();
  }

  std::size_t out() const { return packed_.out(); }
  void apply(const float* x, std::size_t rows, float* y, bool accumulate = false) const {
    apply(x, packed_.in(), rows, y, packed_.out(), accumulate);
  }
  void apply(const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
             bool accumulate = false) const {
    if (rows < kGemmRows || !weight_.defined()) return packed_.apply(x, x_stride, rows, y, y_stride, accumulate);
    const auto n = std::int64_t(rows);
    const std::vector<std::int64_t> input_shape{n, std::int64_t(packed_.in())}, output_shape{n, std::int64_t(packed_.out())};
    auto input = torch::from_blob(const_cast<float*>(x), input_shape, {std::int64_t(x_stride), 1}, torch::kFloat);
    auto output = torch::from_blob(y, output_shape, {std::int64_t(y_stride), 1}, torch::kFloat);
    torch::Tensor product = weight_.scalar_type() == torch::kFloat
                                ? torch::linear(input, weight_)
                                : torch::linear(input.to(torch::kBFloat16), weight_).to(torch::kFloat);
    if (bias_.defined()) product.add_(bias_);
    if (accumulate) output.add_(product);
    else output.copy_(product);
  }

 private:
  PackedLinear packed_;
  torch::Tensor weight_, bias_;   // float32 or bfloat16 copy for the GEMM path
};

// ---------------------------------------------------------------------------------------
// Weights of a module, by the state_dict names lvm_models.cpp registers.
class Weights {
 public:
  explicit Weights(const LvmModel& model) {
    for (const auto& item : model.named_parameters()) tensors_[item.key()] = item.value().detach().contiguous().to(torch::kFloat);
  }
  const torch::Tensor& get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw Error("fast inference", "the model has no parameter '" + name + "'", "rebuild the model");
    return it->second;
  }
  // Linear(name.weight, name.bias) packed in `dtype`.
  Linear linear(const std::string& name, LvmDType dtype) const {
    return Linear(get(name + ".weight"), get(name + ".bias"), dtype);
  }
  // Rows [first, first + count) of a weight matrix (and of its bias, when given).
  Linear rows(const std::string& weight, const torch::Tensor& bias, std::int64_t first, std::int64_t count,
              LvmDType dtype) const {
    auto w = get(weight).narrow(0, first, count).contiguous();
    return Linear(w, bias.defined() ? bias.narrow(0, first, count).contiguous() : bias, dtype);
  }
  std::vector<float> values(const std::string& name) const {
    const auto& t = get(name);
    return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  }
  LayerNorm norm(const std::string& name) const { return {values(name + ".weight"), values(name + ".bias")}; }

 private:
  std::map<std::string, torch::Tensor> tensors_;
};

using Buffer = std::vector<float>;

// ---------------------------------------------------------------------------------------
// lstm: for each layer, the input projections of all steps in one pass (both biases folded
// in), then per step one pass over all four gates' recurrent weights.
class FastLstm : public FastLvm {
 public:
  FastLstm(const Weights& w, const ModelConfig& c, LvmDType dtype) : FastLvm(dtype, c.input_dim), hidden_(c.hidden) {
    for (std::int64_t l = 0; l < c.layers; ++l) {
      const std::string s = std::to_string(l);
      auto bias = (w.get("lstm.bias_ih_l" + s) + w.get("lstm.bias_hh_l" + s)).contiguous();
      input_.push_back(w.rows("lstm.weight_ih_l" + s, bias, 0, 4 * c.hidden, dtype));
      recurrent_.push_back(w.rows("lstm.weight_hh_l" + s, torch::Tensor(), 0, 4 * c.hidden, dtype));
    }
    output_ = w.linear("output_proj", dtype);
  }

  void predict(const float* x, std::size_t batch, std::size_t steps, float* out) const override {
    const std::size_t H = hidden_, rows = batch * steps;
    Buffer gates(rows * 4 * H), sequence(rows * H), h(batch * H), c(batch * H);
    const float* in = x;
    for (std::size_t l = 0; l < input_.size(); ++l) {
      input_[l].apply(in, rows, gates.data());
      std::fill(h.begin(), h.end(), 0.0f);
      std::fill(c.begin(), c.end(), 0.0f);
      for (std::size_t t = 0; t < steps; ++t) {
        // Step t of every sequence: rows t, t + steps, ... of the gate buffer.
        float* step_gates = gates.data() + t * 4 * H;
        if (t > 0) recurrent_[l].apply(h.data(), H, batch, step_gates, steps * 4 * H, /*accumulate=*/true);
        for (std::size_t b = 0; b < batch; ++b) {
          lstm_cell(step_gates + b * steps * 4 * H, c.data() + b * H, h.data() + b * H, H);
          std::memcpy(sequence.data() + (b * steps + t) * H, h.data() + b * H, H * sizeof(float));
        }
      }
      in = sequence.data();
    }
    output_.apply(h.data(), batch, out);
    for (std::size_t b = 0; b < batch; ++b) l2_normalize(out + b * dim_, dim_);
  }

 private:
  std::size_t hidden_;
  std::vector<Linear> input_, recurrent_;
  Linear output_;
};

// ---------------------------------------------------------------------------------------
// gru: input projection, blocks of x <- LayerNorm(x + GRU(x)), last step -> output projection.
class FastGru : public FastLvm {
 public:
  FastGru(const Weights& w, const ModelConfig& c, LvmDType dtype) : FastLvm(dtype, c.input_dim), hidden_(c.hidden) {
    input_proj_ = w.linear("input_proj", dtype);
    for (std::int64_t i = 0; i < c.layers; ++i) {
      const std::string p = "blocks." + std::to_string(i) + ".";
      Block block;
      block.input = w.rows(p + "gru.weight_ih_l0", w.get(p + "gru.bias_ih_l0"), 0, 3 * c.hidden, dtype);
      block.recurrent = w.rows(p + "gru.weight_hh_l0", torch::Tensor(), 0, 3 * c.hidden, dtype);
      block.recurrent_bias = w.values(p + "gru.bias_hh_l0");
      block.norm = w.norm(p + "norm");
      blocks_.push_back(std::move(block));
    }
    output_ = w.linear("output_proj", dtype);
  }

  void predict(const float* x, std::size_t batch, std::size_t steps, float* out) const override {
    const std::size_t H = hidden_, rows = batch * steps;
    Buffer sequence(rows * H), gi(rows * 3 * H), gh(batch * 3 * H), h(batch * H);
    input_proj_.apply(x, rows, sequence.data());
    for (const auto& block : blocks_) {
      block.input.apply(sequence.data(), rows, gi.data());
      std::fill(h.begin(), h.end(), 0.0f);
      for (std::size_t t = 0; t < steps; ++t) {
        for (std::size_t b = 0; b < batch; ++b)
          std::copy(block.recurrent_bias.begin(), block.recurrent_bias.end(), gh.begin() + b * 3 * H);
        if (t > 0) block.recurrent.apply(h.data(), batch, gh.data(), /*accumulate=*/true);
        for (std::size_t b = 0; b < batch; ++b) {
          gru_cell(gi.data() + (b * steps + t) * 3 * H, gh.data() + b * 3 * H, h.data() + b * H, H);
          // The block's output at (b, t): LayerNorm(x + h). x(b, t) is not read again.
          float* y = sequence.data() + (b * steps + t) * H;
          add(y, h.data() + b * H, H);
          block.norm.apply(y, H);
        }
      }
    }
    output_.apply(sequence.data() + (steps - 1) * H, steps * H, batch, out, dim_);
    for (std::size_t b = 0; b < batch; ++b) l2_normalize(out + b * dim_, dim_);
  }

 private:
  struct Block {
    Linear input, recurrent;
    Buffer recurrent_bias;
    LayerNorm norm;
  };
  std::size_t hidden_;
  Linear input_proj_, output_;
  std::vector<Block> blocks_;
};

// ---------------------------------------------------------------------------------------
// transformer (see TransformerModel in lvm_models.cpp).

// torch.nn.MultiheadAttention's math for `queries` rows of each sequence against `keys` rows.
struct Attention {
  Linear q, kv, out;   // in_proj_weight rows [0, E) and [E, 3E); out_proj
  std::size_t width = 0, heads = 0;

  // query: [batch * tq, E]; source: [batch * ts, E] -> result [batch * tq, E]. causal: query
  // row i (of tq == ts) sees source rows <= i.
  void apply(const float* query, std::size_t tq, const float* source, std::size_t ts, std::size_t batch,
             bool causal, float* result) const {
    const std::size_t E = width, hd = E / heads;
    Buffer qs(batch * tq * E), kvs(batch * ts * 2 * E), mixed(batch * tq * E), score(ts);
    q.apply(query, batch * tq, qs.data());
    kv.apply(source, batch * ts, kvs.data());
    const float scale = 1.0f / std::sqrt(float(hd));
    for (std::size_t b = 0; b < batch; ++b)
      for (std::size_t i = 0; i < tq; ++i)
        for (std::size_t head = 0; head < heads; ++head) {
          const float* qi = qs.data() + (b * tq + i) * E + head * hd;
          const std::size_t visible = causal ? i + 1 : ts;
          float max_score = -std::numeric_limits<float>::infinity();
          for (std::size_t j = 0; j < visible; ++j) {
            const float* kj = kvs.data() + (b * ts + j) * 2 * E + head * hd;
            float s = 0;
            for (std::size_t d = 0; d < hd; ++d) s += (qi[d] * scale) * kj[d];
            score[j] = s;
            max_score = std::max(max_score, s);
          }
          float total = 0;
          for (std::size_t j = 0; j < visible; ++j) total += (score[j] = std::exp(score[j] - max_score));
          float* mi = mixed.data() + (b * tq + i) * E + head * hd;
          std::fill(mi, mi + hd, 0.0f);
          for (std::size_t j = 0; j < visible; ++j) {
            const float* vj = kvs.data() + (b * ts + j) * 2 * E + E + head * hd;
            const float weight = score[j] / total;
            for (std::size_t d = 0; d < hd; ++d) mi[d] += weight * vj[d];
          }
        }
    out.apply(mixed.data(), batch * tq, result);
  }
};

class FastTransformer : public FastLvm {
 public:
  FastTransformer(const Weights& w, const ModelConfig& c, LvmDType dtype)
      : FastLvm(dtype, c.input_dim), hidden_(c.hidden), ff_(c.ff) {
    input_proj_ = w.linear("input_proj", dtype);
    for (std::int64_t i = 0; i < c.layers; ++i) {
      const std::string p = "layers." + std::to_string(i) + ".";
      Layer layer;
      for (auto [attention, name] : {std::pair{&layer.self_attn, "self_attn"}, std::pair{&layer.cross_attn, "multihead_attn"}}) {
        const std::string a = p + name + ".";
        const auto& bias = w.get(a + "in_proj_bias");
        attention->q = w.rows(a + "in_proj_weight", bias, 0, c.hidden, dtype);
        attention->kv = w.rows(a + "in_proj_weight", bias, c.hidden, 2 * c.hidden, dtype);
        attention->out = w.linear(a + "out_proj", dtype);
        attention->width = std::size_t(c.hidden);
        attention->heads = std::size_t(c.heads);
      }
      layer.linear1 = w.linear(p + "linear1", dtype);
      layer.linear2 = w.linear(p + "linear2", dtype);
      layer.norm1 = w.norm(p + "norm1"), layer.norm2 = w.norm(p + "norm2"), layer.norm3 = w.norm(p + "norm3");
      layers_.push_back(std::move(layer));
    }
    head_in_ = w.linear("head.0", dtype);
    head_norm_ = w.norm("head.2");
    head_out_ = w.linear("head.3", dtype);
    for (std::size_t t = 0; t < kCachedPositions; ++t) {
      const Buffer pe = positions(t);
      positions_.insert(positions_.end(), pe.begin(), pe.end());
    }
  }

  void predict(const float* x, std::size_t batch, std::size_t steps, float* out) const override {
    const std::size_t E = hidden_, rows = batch * steps;
    Buffer memory(rows * E), current(rows * E), next(rows * E);
    input_proj_.apply(x, rows, memory.data());
    for (std::size_t t = 0; t < steps; ++t) {
      const Buffer pe = t < kCachedPositions ? Buffer(positions_.begin() + t * E, positions_.begin() + (t + 1) * E)
                                             : positions(t);
      for (std::size_t b = 0; b < batch; ++b) add(memory.data() + (b * steps + t) * E, pe.data(), E);
    }
    current = memory;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const bool last = l + 1 == layers_.size();
      const std::size_t tq = last ? 1 : steps;
      // The final layer computes only the last position: the model reads nothing else, and
      // under the causal mask that row attends to every position, so it needs no mask.
      Buffer query(batch * tq * E);
      for (std::size_t b = 0; b < batch; ++b)
        std::memcpy(query.data() + b * tq * E, current.data() + (b * steps + steps - tq) * E, tq * E * sizeof(float));
      layers_[l].apply(query.data(), tq, current.data(), memory.data(), steps, batch, !last, next.data(), ff_);
      std::swap(current, next);
    }
    // current: [batch, E], the last position of each sequence.
    Buffer h(batch * E);
    head_in_.apply(current.data(), batch, h.data());
    for (std::size_t b = 0; b < batch; ++b) {
      gelu(h.data() + b * E, E);
      head_norm_.apply(h.data() + b * E, E);
    }
    head_out_.apply(h.data(), batch, out);
    for (std::size_t b = 0; b < batch; ++b) l2_normalize(out + b * dim_, dim_);
  }

 private:
  struct Layer {
    Attention self_attn, cross_attn;
    Linear linear1, linear2;
    LayerNorm norm1, norm2, norm3;

    // torch.nn.TransformerDecoderLayer (post-norm, ReLU), eval mode. query: [batch * tq, E],
    // x and memory: [batch * ts, E] -> result [batch * tq, E].
    void apply(const float* query, std::size_t tq, const float* x, const float* memory, std::size_t ts,
               std::size_t batch, bool causal, float* result, std::size_t ff) const {
      const std::size_t E = self_attn.width, rows = batch * tq;
      Buffer h(query, query + rows * E), attended(rows * E), inner(rows * ff);
      self_attn.apply(query, tq, x, ts, batch, causal, attended.data());
      add(h.data(), attended.data(), rows * E);
      norm1.apply_rows(h.data(), rows, E);
      cross_attn.apply(h.data(), tq, memory, ts, batch, causal, attended.data());
      add(h.data(), attended.data(), rows * E);
      norm2.apply_rows(h.data(), rows, E);
      linear1.apply(h.data(), rows, inner.data());
      relu(inner.data(), rows * ff);
      linear2.apply(inner.data(), rows, result);
      add(result, h.data(), rows * E);
      norm3.apply_rows(result, rows, E);
    }
  };

  // Sinusoidal position t, computed as lvm_models.cpp's sinusoidal_positions does (float32).
  Buffer positions(std::size_t t) const {
    Buffer pe(hidden_);
    for (std::size_t i = 0; i < hidden_; i += 2) {
      const float div = std::exp(float(i) * (-std::log(10000.0f) / float(hidden_)));
      pe[i] = std::sin(float(t) * div);
      if (i + 1 < hidden_) pe[i + 1] = std::cos(float(t) * div);
    }
    return pe;
  }

  static constexpr std::size_t kCachedPositions = 64;
  std::size_t hidden_, ff_;
  Buffer positions_;   // the first kCachedPositions positions, [t * E + i]
  Linear input_proj_, head_in_, head_out_;
  LayerNorm head_norm_;
  std::vector<Layer> layers_;
};

// ---------------------------------------------------------------------------------------
// amn (see AmnModel in lvm_models.cpp): attention scores x_i . (W_k^T q).
class FastAmn : public FastLvm {
 public:
  FastAmn(const Weights& w, const ModelConfig& c, LvmDType dtype) : FastLvm(dtype, c.input_dim), ff_(c.ff) {
    query_proj_ = w.linear("query_proj", dtype);
    auto key_t = w.get("key_proj.weight").t().contiguous();   // [D, A]: q -> W_k^T q
    key_query_ = Linear(key_t, torch::Tensor(), dtype);
    mlp_in_ = w.linear("residual_mlp.0", dtype);
    mlp_norm1_ = w.norm("residual_mlp.2");
    mlp_mid_ = w.linear("residual_mlp.3", dtype);
    mlp_norm2_ = w.norm("residual_mlp.5");
    mlp_out_ = w.linear("residual_mlp.6", dtype);
    scale_ = 1.0f / std::sqrt(float(c.hidden));
  }

  void predict(const float* x, std::size_t batch, std::size_t steps, float* out) const override {
    const std::size_t D = dim_, A = query_proj_.out();
    Buffer joined(batch * 2 * D), query(batch * A), key_query(batch * D), score(steps), inner(batch * ff_),
        inner2(batch * (ff_ / 2));
    for (std::size_t b = 0; b < batch; ++b) {   // joined[b] = [baseline, mixed]; baseline first
      float* baseline = joined.data() + b * 2 * D;
      std::fill(baseline, baseline + D, 0.0f);
      for (std::size_t t = 0; t < steps; ++t) add(baseline, x + (b * steps + t) * D, D);
      for (std::size_t d = 0; d < D; ++d) baseline[d] /= float(steps);
    }
    query_proj_.apply(joined.data(), 2 * D, batch, query.data(), A);
    key_query_.apply(query.data(), batch, key_query.data());
    for (std::size_t b = 0; b < batch; ++b) {
      const float* context = x + b * steps * D;
      float max_score = -std::numeric_limits<float>::infinity(), total = 0;
      for (std::size_t t = 0; t < steps; ++t) {
        float s = 0;
        for (std::size_t d = 0; d < D; ++d) s += context[t * D + d] * key_query[b * D + d];
        score[t] = s * scale_;
        max_score = std::max(max_score, score[t]);
      }
      for (std::size_t t = 0; t < steps; ++t) total += (score[t] = std::exp(score[t] - max_score));
      float* mixed = joined.data() + b * 2 * D + D;
      std::fill(mixed, mixed + D, 0.0f);
      for (std::size_t t = 0; t < steps; ++t)
        for (std::size_t d = 0; d < D; ++d) mixed[d] += score[t] / total * context[t * D + d];
    }
    mlp_in_.apply(joined.data(), batch, inner.data());
    for (std::size_t b = 0; b < batch; ++b) {
      gelu(inner.data() + b * ff_, ff_);
      mlp_norm1_.apply(inner.data() + b * ff_, ff_);
    }
    mlp_mid_.apply(inner.data(), batch, inner2.data());
    for (std::size_t b = 0; b < batch; ++b) {
      gelu(inner2.data() + b * (ff_ / 2), ff_ / 2);
      mlp_norm2_.apply(inner2.data() + b * (ff_ / 2), ff_ / 2);
    }
    mlp_out_.apply(inner2.data(), batch, out);
    for (std::size_t b = 0; b < batch; ++b) {
      add(out + b * D, joined.data() + b * 2 * D, D);   // baseline + residual
      l2_normalize(out + b * D, D);
    }
  }

 private:
  std::size_t ff_;
  Linear query_proj_, key_query_, mlp_in_, mlp_mid_, mlp_out_;
  LayerNorm mlp_norm1_, mlp_norm2_;
  float scale_ = 1.0f;
};

}  // namespace

torch::Tensor FastLvm::forward(const torch::Tensor& contexts) const {
  if (contexts.dim() != 3 || std::size_t(contexts.size(2)) != dim_)
    throw Error("fast inference", "expected contexts [batch, steps, " + std::to_string(dim_) + "]",
                "pass windows of the model's vector width");
  auto x = contexts.to(torch::kFloat).contiguous();
  auto out = torch::empty({x.size(0), std::int64_t(dim_)});
  if (x.size(0) > 0 && x.size(1) > 0) predict(x.data_ptr<float>(), x.size(0), x.size(1), out.data_ptr<float>());
  return out;
}

std::unique_ptr<FastLvm> make_fast_lvm(const LvmModel& model, LvmDType dtype) {
  const ModelConfig& c = model.config();
  Weights weights(model);
  if (c.arch == "lstm") return std::make_unique<FastLstm>(weights, c, dtype);
  if (c.arch == "gru") return std::make_unique<FastGru>(weights, c, dtype);
  if (c.arch == "transformer") return std::make_unique<FastTransformer>(weights, c, dtype);
  if (c.arch == "amn") return std::make_unique<FastAmn>(weights, c, dtype);
  throw Error("model '" + c.arch + "'", "no fast inference path for this architecture", "use one of amn, lstm, gru, transformer");
}

}  // namespace lvmflow

#pragma once
// The T5 encoder stack with Hugging Face T5EncoderModel's math (see docs/stages/encode.md).
// Includes torch headers: only for torch translation units.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include "stages/encode/t5_config.hpp"
#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

// Named float tensors from model.safetensors or pytorch_model.bin, with shape checks that
// name the tensor and the file.
class WeightFile {
 public:
  // Opens <folder>/model.safetensors, else <folder>/pytorch_model.bin; throws lvmflow::Error
  // naming both when neither exists.
  static std::unique_ptr<WeightFile> open(const std::filesystem::path& folder);
  virtual ~WeightFile() = default;
  virtual const std::filesystem::path& path() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // The tensor as float32, checked against `shape`.
  virtual at::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const = 0;
};

// y = x W^T with W kept in the configured precision.
class LinearOp {
 public:
  LinearOp() = default;
  LinearOp(const at::Tensor& weight_fp32, ComputeDType dtype);
  at::Tensor operator()(const at::Tensor& x) const;
  at::Tensor with_relu(const at::Tensor& x) const;  // relu(x W^T), fused for int8

 private:
  at::Tensor weight_;   // float32 or bfloat16
  c10::IValue packed_;  // int8: oneDNN-packed weight (quantized::linear_prepack)
};

class T5EncoderStack {
 public:
  // Loads and shape-checks every encoder weight. Linear weights are kept in `dtype`;
  // embeddings, norms and the residual stream stay float32.
  T5EncoderStack(const T5Config& config, const WeightFile& weights, ComputeDType dtype);

  // ids, mask: [B, L] int64 (mask 1 = token, 0 = padding) -> hidden states [B, L, d_model]
  // float32 after the final layer norm. Thread-safe.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask) const;

  // Relative position buckets [q_len, k_len] (bidirectional), as HF's
  // T5Attention._relative_position_bucket computes them.
  at::Tensor position_buckets(std::int64_t q_len, std::int64_t k_len) const;

  const T5Config& config() const { return config_; }

 private:
  struct Layer {
    at::Tensor attn_norm, ff_norm;
    LinearOp qkv, out, wi, wo;  // qkv = [q; k; v], wi = [wi_0; wi_1] when gated
  };
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;

  T5Config config_;
  at::Tensor embedding_, relative_bias_, final_norm_;
  std::vector<Layer> layers_;
};

}  // namespace lvmflow

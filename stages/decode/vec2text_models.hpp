#pragma once
// The two vec2text models (Morris et al. 2023; github.com/jxmorris12/vec2text) on top of the
// shared T5 encoder-decoder (stages/common/t5): the inversion ("hypothesis") model of
// models/inversion.py and the corrector of models/corrector_encoder.py. Torch TUs only.
#include <filesystem>
#include <string>
#include <utility>

#include <ATen/core/Tensor.h>

#include "stages/common/t5/t5_model.hpp"
#include "stages/decode/vec2text_config.hpp"

namespace lvmflow {

// nn.Sequential(Linear(e, bottleneck), Dropout, GELU, Linear(bottleneck, hidden * repeat)):
// keys <name>.0.{weight,bias} and <name>.3.{weight,bias}; maps embeddings [B, e] to
// `repeat` pseudo-token embeddings [B, repeat, hidden].
class EmbeddingTransform {
 public:
  EmbeddingTransform() = default;
  EmbeddingTransform(const CheckpointTensors& t, const std::string& name, std::int64_t hidden, std::int64_t repeat);
  at::Tensor operator()(const at::Tensor& embeddings) const;
  std::int64_t embedder_dim() const { return w0_.size(1); }

 private:
  at::Tensor w0_, b0_, w3_, b3_;
  std::int64_t repeat_ = 0, hidden_ = 0;
};

class InversionModel {
 public:
  explicit InversionModel(const std::filesystem::path& folder, ComputeDType dtype = ComputeDType::Float32);
  const Vec2TextConfig& config() const { return config_; }
  const T5EncoderDecoder& t5() const { return t5_; }
  std::int64_t embedder_dim() const { return transform_.embedder_dim(); }
  // Encoder input for target embeddings [B, e]: the pseudo tokens and an all-ones mask.
  std::pair<at::Tensor, at::Tensor> encoder_inputs(const at::Tensor& embeddings) const;

 private:
  Vec2TextConfig config_;
  CheckpointTensors tensors_;
  T5EncoderDecoder t5_;
  EmbeddingTransform transform_;
};

class CorrectorModel {
 public:
  explicit CorrectorModel(const std::filesystem::path& folder, ComputeDType dtype = ComputeDType::Float32);
  const Vec2TextConfig& config() const { return config_; }
  const T5EncoderDecoder& t5() const { return t5_; }
  std::int64_t embedder_dim() const { return target_.embedder_dim(); }
  // [eos, T1(e), eos, T3(h), eos, T2(e - h), eos, embed(hypothesis ids)] -> LayerNorm, and the
  // mask: 4 + 3 * repeat ones, then the hypothesis mask. e, h: [B, e]; ids, mask: [B, L].
  std::pair<at::Tensor, at::Tensor> encoder_inputs(const at::Tensor& target, const at::Tensor& hypothesis,
                                                   const at::Tensor& hypothesis_ids,
                                                   const at::Tensor& hypothesis_mask) const;

 private:
  Vec2TextConfig config_;
  CheckpointTensors tensors_;
  T5EncoderDecoder t5_;
  EmbeddingTransform target_, difference_, hypothesis_;   // embedding_transform_1, _2, _3
  at::Tensor norm_weight_, norm_bias_;
};

}  // namespace lvmflow

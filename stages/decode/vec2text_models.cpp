#include "stages/decode/vec2text_models.hpp"

#include <ATen/ATen.h>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

namespace {
const std::string kT5Prefix = "encoder_decoder.";

T5Seq2SeqArch arch_of(const CheckpointTensors& t, const Vec2TextConfig& c) {
  return infer_t5_arch(t, kT5Prefix, c.base_model);
}
}  // namespace

EmbeddingTransform::EmbeddingTransform(const CheckpointTensors& t, const std::string& name, std::int64_t hidden,
                                       std::int64_t repeat)
    : repeat_(repeat), hidden_(hidden) {
  const auto s = t.shape(name + ".0.weight");
  if (s.size() != 2)
    throw Error((t.folder() / t.source()).string(), "tensor '" + name + ".0.weight' is missing",
                "the folder does not hold this kind of vec2text model (inversion vs corrector?)");
  const std::int64_t bottleneck = s[0], embedder = s[1];
  w0_ = t.get(name + ".0.weight", {bottleneck, embedder});
  b0_ = t.get(name + ".0.bias", {bottleneck});
  w3_ = t.get(name + ".3.weight", {hidden * repeat, bottleneck});
  b3_ = t.get(name + ".3.bias", {hidden * repeat});
}

at::Tensor EmbeddingTransform::operator()(const at::Tensor& embeddings) const {
  // nn.GELU() is the exact (erf) GELU; dropout is off at inference.
  at::Tensor h = at::gelu(at::linear(embeddings, w0_, b0_));
  return at::linear(h, w3_, b3_).view({embeddings.size(0), repeat_, hidden_});
}

InversionModel::InversionModel(const fs::path& folder, ComputeDType dtype)
    : config_(read_vec2text_config(folder)),
      tensors_(CheckpointTensors::open(folder)),
      t5_(tensors_, kT5Prefix, arch_of(tensors_, config_), dtype),
      transform_(tensors_, "embedding_transform", t5_.d_model(), config_.num_repeat_tokens) {
  tensors_ = CheckpointTensors();   // the model holds its own copies; drop the file's tensors
}

std::pair<at::Tensor, at::Tensor> InversionModel::encoder_inputs(const at::Tensor& embeddings) const {
  at::Tensor x = transform_(embeddings);
  return {x, at::ones({x.size(0), x.size(1)}, at::kLong)};
}

namespace {
// Checkpoints from before vec2text stopped sharing one MLP between the three inputs carry
// embedding_transform.* only (trainers/corrector.py, _remap_state_dict): all three use it.
std::string corrector_transform_name(const CheckpointTensors& t, int i) {
  if (!t.has("embedding_transform_1.0.weight") && t.has("embedding_transform.3.weight")) return "embedding_transform";
  return "embedding_transform_" + std::to_string(i);
}
}  // namespace

CorrectorModel::CorrectorModel(const fs::path& folder, ComputeDType dtype)
    : config_(read_vec2text_config(folder)),
      tensors_(CheckpointTensors::open(folder)),
      t5_(tensors_, kT5Prefix, arch_of(tensors_, config_), dtype),
      target_(tensors_, corrector_transform_name(tensors_, 1), t5_.d_model(), config_.num_repeat_tokens),
      difference_(tensors_, corrector_transform_name(tensors_, 2), t5_.d_model(), config_.num_repeat_tokens),
      hypothesis_(tensors_, corrector_transform_name(tensors_, 3), t5_.d_model(), config_.num_repeat_tokens) {
  if (!tensors_.has("layernorm.weight"))
    throw Error((folder / tensors_.source()).string(), "tensor 'layernorm.weight' is missing",
                "this is not a vec2text corrector checkpoint (is it the inversion model?)");
  norm_weight_ = tensors_.get("layernorm.weight", {t5_.d_model()});
  norm_bias_ = tensors_.get("layernorm.bias", {t5_.d_model()});
  tensors_ = CheckpointTensors();
}

std::pair<at::Tensor, at::Tensor> CorrectorModel::encoder_inputs(const at::Tensor& target, const at::Tensor& hypothesis,
                                                                 const at::Tensor& hypothesis_ids,
                                                                 const at::Tensor& hypothesis_mask) const {
  const std::int64_t B = target.size(0);
  at::Tensor sep = t5_.embed(at::full({B, 1}, T5EncoderDecoder::kEos, at::kLong));
  at::Tensor x = at::cat({sep, target_(target), sep, hypothesis_(hypothesis), sep, difference_(target - hypothesis),
                          sep, t5_.embed(hypothesis_ids)},
                         1);
  x = at::layer_norm(x, {t5_.d_model()}, norm_weight_, norm_bias_, 1e-5);
  at::Tensor mask = at::cat({at::ones({B, 4 + 3 * config_.num_repeat_tokens}, at::kLong), hypothesis_mask.to(at::kLong)}, 1);
  return {x, mask};
}

}  // namespace lvmflow

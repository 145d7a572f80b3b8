#pragma once
// The one T5 of lvmflow, with Hugging Face's math (T5EncoderModel, T5ForConditionalGeneration):
// an encoder stack (token ids or input embeddings in), a decoder stack with cross-attention
// and a key/value cache, and the encoder-decoder with its LM head. encode.gtr_t5 runs the
// encoder stack; decode.vec2text runs the encoder-decoder and keeps only its own parts
// (embedding transforms, inversion/corrector inputs, greedy and beam search). Weights come
// from CheckpointTensors (HF tensor names under a prefix). Torch translation units only.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include "stages/common/t5/checkpoint_tensors.hpp"
#include "stages/common/t5/compute_dtype.hpp"
#include "stages/common/t5/t5_config.hpp"

namespace lvmflow {

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

// T5's position bias [1, heads, q_len, k_len] from a layer-0 relative_attention_bias table
// (HF T5Attention._relative_position_bucket): queries sit at positions q_offset.., keys at
// 0..; bidirectional (encoder) splits the buckets between both directions, the decoder only
// looks back.
at::Tensor t5_position_bias(const T5Config& config, const at::Tensor& table, std::int64_t q_len,
                            std::int64_t k_len, std::int64_t q_offset, bool bidirectional);

// The feed-forward block of every T5 layer: norm, wi (relu or gated-gelu), wo.
struct T5FeedForward {
  at::Tensor norm;
  LinearOp wi, wo;   // wi = [wi_0; wi_1] when gated
  T5FeedForward() = default;
  // Loads "<p>layer_norm.weight" and "<p>DenseReluDense.*".
  T5FeedForward(const T5Config& config, const CheckpointTensors& t, const std::string& p, ComputeDType dtype);
  at::Tensor operator()(const T5Config& config, const at::Tensor& x) const;   // the residual's summand
};

class T5EncoderStack {
 public:
  // Loads and shape-checks "<prefix>encoder.*" and the embedding ("<prefix>shared.weight",
  // else the tied copy "<prefix>encoder.embed_tokens.weight"). Linear weights are kept in
  // `dtype`; embeddings, norms and the residual stream stay float32.
  T5EncoderStack(const T5Config& config, const CheckpointTensors& weights, const std::string& prefix,
                 ComputeDType dtype);

  // ids, mask: [B, L] int64 (mask 1 = token, 0 = padding) -> hidden states [B, L, d_model]
  // float32 after the final layer norm. Thread-safe.
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& mask) const { return forward_embeds(embed(ids), mask); }
  // The same from input embeddings [B, L, d_model] (HF's inputs_embeds; vec2text's pseudo tokens).
  at::Tensor forward_embeds(const at::Tensor& inputs_embeds, const at::Tensor& mask) const;
  // Token embeddings [B, L] -> [B, L, d_model] (no sqrt(d_model) scaling in T5).
  at::Tensor embed(const at::Tensor& ids) const;

  const T5Config& config() const { return config_; }
  const at::Tensor& embedding() const { return embedding_; }

 private:
  struct Layer {
    at::Tensor attn_norm;
    LinearOp qkv, out;   // qkv = [q; k; v]
    T5FeedForward ff;
  };

  T5Config config_;
  at::Tensor embedding_, relative_bias_, final_norm_;
  std::vector<Layer> layers_;
};

// Decoder keys/values so far (self-attention) and of the encoder output (cross-attention).
struct T5DecoderCache {
  std::vector<at::Tensor> self_k, self_v, cross_k, cross_v;   // [N, H, len, d_kv]
  at::Tensor cross_bias;                                     // [N, 1, 1, S]
  std::int64_t length = 0;
  // Keeps (and reorders) the rows `rows` (beam search, finished rows leaving a batch).
  void select_rows(const at::Tensor& rows);
};

class T5DecoderStack {
 public:
  // Loads "<prefix>decoder.*" for `layers` blocks; `embedding` is the shared token table.
  T5DecoderStack(const T5Config& config, std::int64_t layers, const CheckpointTensors& weights,
                 const std::string& prefix, at::Tensor embedding, ComputeDType dtype);

  // The cross-attention keys/values of `encoded` [N, S, d] (computed once, reused every step).
  T5DecoderCache start(const at::Tensor& encoded, const at::Tensor& mask) const;
  // Runs tokens [N, T] at positions cache.length.. through the decoder, appending to the
  // cache; returns the hidden states [N, T, d] after the final layer norm.
  at::Tensor step(T5DecoderCache& cache, const at::Tensor& tokens) const;

 private:
  struct Layer {
    at::Tensor self_norm, cross_norm;
    LinearOp self_qkv, self_out;            // self_qkv = [q; k; v]
    LinearOp cross_q, cross_kv, cross_out;  // cross_kv = [k; v] (applied to the encoder output)
    T5FeedForward ff;
  };

  T5Config config_;
  at::Tensor embedding_, relative_bias_, final_norm_;
  std::vector<Layer> layers_;
};

// What a T5ForConditionalGeneration checkpoint is made of.
struct T5Seq2SeqArch {
  T5Config config;                  // encoder dims, buckets, FFN kind (shared by the decoder)
  std::int64_t decoder_layers = 0;
  bool tied_lm_head = true;         // LM head = shared embedding, hidden scaled by d_model^-0.5
  std::string describe() const;     // e.g. "T5 d_model 768, 12+12 layers, 12 heads, relu, tied head"
};

// Reads the architecture off the tensors under `prefix` (e.g. "encoder_decoder."): vocabulary
// and d_model from shared.weight, heads and buckets from the relative attention bias, d_kv
// and d_ff from the projections, layer counts from the block indices, relu vs gated-gelu from
// wi vs wi_0. `base_model` decides the LM head: T5 v1.0 models (relu) tie it to the
// embedding, v1.1 models (gated-gelu, names containing "v1_1" or "flan") do not and carry
// lm_head.weight. Max distance is T5's 128.
T5Seq2SeqArch infer_t5_arch(const CheckpointTensors& tensors, const std::string& prefix,
                            const std::string& base_model);

// T5ForConditionalGeneration: encoder stack, decoder stack, LM head.
class T5EncoderDecoder {
 public:
  static constexpr std::int64_t kPad = 0, kEos = 1, kDecoderStart = 0;

  // Loads and shape-checks every tensor under `prefix`; errors name the tensor and the file.
  // `dtype` is the precision of the projection and LM-head weights.
  T5EncoderDecoder(const CheckpointTensors& tensors, const std::string& prefix, const T5Seq2SeqArch& arch,
                   ComputeDType dtype = ComputeDType::Float32);

  const T5Seq2SeqArch& arch() const { return arch_; }
  std::int64_t d_model() const { return arch_.config.d_model; }

  at::Tensor embed(const at::Tensor& ids) const { return encoder_.embed(ids); }
  // Encoder on input embeddings [B, L, d] with mask [B, L] (1 = attend) -> hidden [B, L, d].
  at::Tensor encode(const at::Tensor& inputs_embeds, const at::Tensor& mask) const {
    return encoder_.forward_embeds(inputs_embeds, mask);
  }
  T5DecoderCache start_decoder(const at::Tensor& encoded, const at::Tensor& mask) const {
    return decoder_.start(encoded, mask);
  }
  // Logits [N, T, vocab] of tokens [N, T] fed at positions cache.length.. (appends to the cache).
  at::Tensor decode(T5DecoderCache& cache, const at::Tensor& tokens) const;
  // Teacher-forced decoder logits [B, T, vocab] for decoder ids [B, T] (starting with token 0).
  at::Tensor decoder_logits(const at::Tensor& encoded, const at::Tensor& mask, const at::Tensor& decoder_ids) const;

 private:
  T5Seq2SeqArch arch_;
  T5EncoderStack encoder_;
  T5DecoderStack decoder_;
  LinearOp lm_head_;   // the embedding table when tied
};

}  // namespace lvmflow

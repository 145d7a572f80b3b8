#pragma once
// T5 encoder-decoder (Hugging Face T5ForConditionalGeneration's math) as vec2text uses it:
// the encoder runs on given input embeddings (vec2text feeds pseudo-token embeddings, not
// token ids), the decoder generates greedily or with beam search. Torch translation units only.
//
// Why not stages/encode's T5EncoderStack: it takes token ids only and keeps its embedding
// table private; vec2text needs `inputs_embeds` and the decoder shares the embedding. This
// class therefore holds one T5 (encoder + decoder + LM head) and computes both stacks with the
// same attention / feed-forward / norm blocks.
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "stages/decode/checkpoint_tensors.hpp"
#include "stages/encode/t5_config.hpp"
#include "stages/encode/t5_model.hpp"   // LinearOp: projections in float32 / bfloat16 / int8

namespace lvmflow {

struct T5Seq2SeqArch {
  T5Config config;                  // encoder dims, buckets, FFN kind (shared by the decoder)
  std::int64_t decoder_layers = 0;
  bool tied_lm_head = true;         // LM head = shared embedding, hidden scaled by d_model^-0.5
  std::string describe() const;     // e.g. "T5 d_model 768, 12+12 layers, 12 heads, relu, tied head"
};

// Reads the architecture off the tensors under `prefix` (e.g. "encoder_decoder."): vocabulary
// and d_model from shared.weight, heads and buckets from the relative attention bias, d_kv
// and d_ff from the projections, layer counts from the block indices, relu vs gated-gelu from
// wi vs wi_0. vec2text's config.json only names the base model (`base_model`, e.g. "t5-base"):
// T5 v1.0 models (relu) tie the LM head to the embedding, v1.1 models (gated-gelu, names
// containing "v1_1") do not and carry lm_head.weight. Max distance is T5's 128.
T5Seq2SeqArch infer_t5_arch(const CheckpointTensors& tensors, const std::string& prefix,
                            const std::string& base_model);

// One hypothesis of a beam search: tokens start with the decoder start token (0) and end with
// EOS (1) when finished; score = sum of log-probabilities / length (HF's length_penalty 1).
struct BeamHypothesis {
  std::vector<std::int64_t> tokens;
  double score = 0;
};

class T5Seq2Seq {
 public:
  static constexpr std::int64_t kPad = 0, kEos = 1, kDecoderStart = 0;

  // Loads and shape-checks every tensor under `prefix`; errors name the tensor and the file.
  // `dtype` is the precision of the projection and LM-head weights (stages/encode's LinearOp:
  // bfloat16 halves, int8 quarters the memory traffic per generated token); embeddings, norms
  // and the residual stream stay float32.
  T5Seq2Seq(const CheckpointTensors& tensors, const std::string& prefix, const T5Seq2SeqArch& arch,
            ComputeDType dtype = ComputeDType::Float32);

  const T5Seq2SeqArch& arch() const { return arch_; }
  std::int64_t d_model() const { return arch_.config.d_model; }

  // Token embeddings [B, L] -> [B, L, d_model] (no scaling, as in T5).
  at::Tensor embed(const at::Tensor& ids) const;
  // Encoder on input embeddings [B, L, d] with mask [B, L] (1 = attend) -> hidden [B, L, d].
  at::Tensor encode(const at::Tensor& inputs_embeds, const at::Tensor& mask) const;
  // Teacher-forced decoder logits [B, T, vocab] for decoder ids [B, T] (starting with token 0).
  at::Tensor decoder_logits(const at::Tensor& encoded, const at::Tensor& mask, const at::Tensor& decoder_ids) const;

  // HF generate semantics: sequences start with token 0; max_length counts it; finished rows
  // are padded with 0. Greedy returns one sequence per row.
  std::vector<std::vector<std::int64_t>> greedy(const at::Tensor& encoded, const at::Tensor& mask,
                                                std::int64_t max_length) const;
  // Beam search (early_stopping=False, length_penalty 1): per row the `num_return` best
  // hypotheses, best first.
  std::vector<std::vector<BeamHypothesis>> beam_search(const at::Tensor& encoded, const at::Tensor& mask,
                                                       std::int64_t num_beams, std::int64_t max_length,
                                                       std::int64_t num_return) const;

 private:
  struct Attention {
    LinearOp q, kv, o;   // kv = [k; v]
  };
  struct FeedForward {
    at::Tensor norm;
    LinearOp wi, wo;   // wi = [wi_0; wi_1] when gated
  };
  struct EncoderLayer {
    at::Tensor attn_norm;
    Attention attn;
    FeedForward ff;
  };
  struct DecoderLayer {
    at::Tensor self_norm, cross_norm;
    Attention self_attn, cross_attn;
    FeedForward ff;
  };
  // Decoder keys/values so far (self-attention) and of the encoder output (cross-attention).
  struct DecoderCache {
    std::vector<at::Tensor> self_k, self_v, cross_k, cross_v;   // [N, H, len, d_kv]
    at::Tensor cross_bias;                                     // [N, 1, 1, S]
    std::int64_t length = 0;
    void select_rows(const at::Tensor& rows);
  };

  Attention load_attention(const CheckpointTensors& t, const std::string& p) const;
  FeedForward load_ff(const CheckpointTensors& t, const std::string& p) const;
  at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight) const;
  at::Tensor feed_forward(const FeedForward& ff, const at::Tensor& x) const;
  at::Tensor split_heads(const at::Tensor& x) const;    // [N, L, inner] -> [N, H, L, d_kv]
  at::Tensor merge_heads(const at::Tensor& x) const;    // [N, H, L, d_kv] -> [N, L, inner]
  at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) const;
  at::Tensor mask_bias(const at::Tensor& mask) const;   // [N, S] -> [N, 1, 1, S] additive
  at::Tensor position_bias(const at::Tensor& table, std::int64_t q_len, std::int64_t k_len,
                           std::int64_t q_offset, bool bidirectional) const;   // [1, H, q, k]

  DecoderCache start_decoder(const at::Tensor& encoded, const at::Tensor& mask) const;
  // Runs tokens [N, T] at positions cache.length.. through the decoder, appending to the cache;
  // returns logits [N, T, vocab].
  at::Tensor decode(DecoderCache& cache, const at::Tensor& tokens) const;

  T5Seq2SeqArch arch_;
  ComputeDType dtype_;
  at::Tensor shared_, encoder_bias_, decoder_bias_, encoder_final_, decoder_final_;
  LinearOp lm_head_;   // the embedding table when tied
  std::vector<EncoderLayer> encoder_;
  std::vector<DecoderLayer> decoder_;
};

}  // namespace lvmflow

#pragma once
// Text generation over the shared T5 encoder-decoder (stages/common/t5) with Hugging Face
// generate()'s semantics, as vec2text calls it: greedy, and beam search with
// early_stopping=False and length_penalty 1. Torch translation units only.
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "stages/common/t5/t5_model.hpp"

namespace lvmflow {

// One hypothesis of a beam search: tokens start with the decoder start token (0) and end with
// EOS (1) when finished; score = sum of log-probabilities / length (HF's length_penalty 1).
struct BeamHypothesis {
  std::vector<std::int64_t> tokens;
  double score = 0;
};

// One sequence per row of `encoded` [B, S, d]; sequences start with token 0, max_length counts
// it, finished rows are padded with 0 to the longest.
std::vector<std::vector<std::int64_t>> t5_greedy(const T5EncoderDecoder& t5, const at::Tensor& encoded,
                                                 const at::Tensor& mask, std::int64_t max_length);
// Per row the `num_return` best hypotheses, best first.
std::vector<std::vector<BeamHypothesis>> t5_beam_search(const T5EncoderDecoder& t5, const at::Tensor& encoded,
                                                        const at::Tensor& mask, std::int64_t num_beams,
                                                        std::int64_t max_length, std::int64_t num_return);

}  // namespace lvmflow

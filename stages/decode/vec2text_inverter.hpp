#pragma once
// Embeddings -> text with vec2text: the inversion model's hypothesis, then `num_steps`
// corrections, each re-embedding the candidates with GTR-T5 (`vec2text` pooling) and keeping
// the best by cosine to the target (sequence-level beam search, trainers/corrector.py).
// Torch-free header: the models live in vec2text_inverter.cpp.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "stages/encode/text_encoder.hpp"   // ComputeDType (torch-free)

namespace lvmflow {

// How hard to search: the knobs of vec2text's invert_embeddings / generate.
struct Vec2TextSearch {
  std::int64_t num_steps = 0;              // corrections; 0 = the inversion model's hypothesis only
  std::int64_t sequence_beam_width = 0;    // candidates kept between steps; 0/1 = one
  std::int64_t num_beams = 1;              // token-level beam search inside each generation
  std::int64_t max_length = 0;             // generated tokens incl. start token; 0 = max_seq_length
};

struct Vec2TextOptions {
  std::filesystem::path inversion_model;   // e.g. a copy of jxm/gtr__nq__32
  std::filesystem::path corrector_model;   // e.g. jxm/gtr__nq__32__correct; empty: hypothesis only
  Vec2TextSearch search;                   // the default for invert()
  ComputeDType dtype = ComputeDType::Float32;   // projection weights; bfloat16 / int8 are not exact
};

class Vec2TextInverter {
 public:
  // `embedder` re-embeds hypotheses; it must use the vec2text pooling and is required when
  // num_steps > 0. `spiece_model` turns token ids into text (the T5 vocabulary). Throws
  // lvmflow::Error naming the param / folder / tensor for anything missing or inconsistent.
  Vec2TextInverter(const Vec2TextOptions& options, const TextEncoder* embedder,
                   const std::filesystem::path& spiece_model);
  ~Vec2TextInverter();

  // Thread-safe. `targets`: count rows of embedder_dim() floats.
  std::vector<std::string> invert(const float* targets, std::size_t count) const;
  // The same with other search settings (the models stay loaded; e.g. for benchmarks).
  std::vector<std::string> invert(const float* targets, std::size_t count, const Vec2TextSearch& search) const;

  std::size_t embedder_dim() const;
  std::int64_t max_seq_length() const;
  // One line for the log: models, architecture, steps and beams.
  std::string describe() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lvmflow

#pragma once
// A synthetic stand-in for encoded Wikipedia chunks, for the lvm tests: each chunk is a
// signed hashed bag of words (the statistics of a hashed-feature encoder), drawn half from a
// Zipfian background vocabulary and half from its article's topic words, with the topic
// drifting along the article. Consecutive chunks of an article therefore share direction the
// way real chunks do, and the mean of the context is a strong but beatable predictor.
#include <cstdint>

#include "pipeline/batch.hpp"

namespace lvmflow {

struct SyntheticCorpusOptions {
  std::size_t articles = 60;
  std::size_t chunks_per_article = 25;
  std::size_t dim = 768;
  std::size_t words_per_chunk = 60;
  std::size_t vocabulary = 5000;
  std::size_t topic_words = 40;
  double topic_share = 0.5;   // share of a chunk's words drawn from the article's topic
  std::uint64_t seed = 1;
};

// One batch of chunk rows as encode.* emits them: ids "<article>:<position>", ints article_id
// and position, L2-normalised vectors of width `dim`.
Batch make_synthetic_chunks(const SyntheticCorpusOptions& options);

}  // namespace lvmflow

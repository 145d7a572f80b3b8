#include "tests/stages/lvm/synthetic_corpus.hpp"

#include <cmath>
#include <random>
#include <vector>

namespace lvmflow {

Batch make_synthetic_chunks(const SyntheticCorpusOptions& o) {
  std::mt19937_64 rng(o.seed);
  // Each word hashes to one dimension with a sign, like a hashing vectorizer.
  std::vector<std::size_t> word_dim(o.vocabulary);
  std::vector<float> word_sign(o.vocabulary);
  std::uniform_int_distribution<std::size_t> any_dim(0, o.dim - 1);
  for (std::size_t w = 0; w < o.vocabulary; ++w) word_dim[w] = any_dim(rng), word_sign[w] = (rng() & 1) ? 1.f : -1.f;
  std::vector<double> zipf(o.vocabulary);
  for (std::size_t w = 0; w < o.vocabulary; ++w) zipf[w] = 1.0 / double(w + 1);
  std::discrete_distribution<std::size_t> background(zipf.begin(), zipf.end());
  std::uniform_int_distribution<std::size_t> any_word(0, o.vocabulary - 1);
  std::bernoulli_distribution from_topic(o.topic_share);

  Batch b;
  b.dim = o.dim;
  for (std::size_t a = 0; a < o.articles; ++a) {
    std::vector<std::size_t> topic(o.topic_words);
    for (auto& w : topic) w = any_word(rng);
    for (std::size_t p = 0; p < o.chunks_per_article; ++p) {
      // Drift: every few chunks one topic word is replaced.
      if (p > 0 && p % 3 == 0) topic[rng() % topic.size()] = any_word(rng);
      std::vector<float> counts(o.dim, 0.f);
      std::uniform_int_distribution<std::size_t> pick_topic(0, topic.size() - 1);
      for (std::size_t k = 0; k < o.words_per_chunk; ++k) {
        std::size_t w = from_topic(rng) ? topic[pick_topic(rng)] : background(rng);
        counts[word_dim[w]] += word_sign[w];
      }
      double norm = 0;
      for (float c : counts) norm += double(c) * c;
      norm = std::sqrt(std::max(norm, 1e-12));
      b.ids.push_back(std::to_string(a) + ":" + std::to_string(p));
      b.ints["article_id"].push_back(std::int64_t(a));
      b.ints["position"].push_back(std::int64_t(p));
      for (float c : counts) b.vectors.push_back(float(c / norm));
    }
  }
  return b;
}

}  // namespace lvmflow

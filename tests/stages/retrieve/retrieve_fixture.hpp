#pragma once
// Tiny clustered corpora for the retrieve.* tests, and a brute-force cosine top-k to check
// FAISS against.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

// `articles` articles of `chunks_each` chunks; each article is a cluster (its own random
// centre plus noise), like the chunks of one Wikipedia article. Ids "<article>:<position>".
// Rows go out in `batches` batches, in order.
inline std::vector<Batch> clustered_chunks(int articles, int chunks_each, std::size_t dim,
                                           unsigned seed = 7, std::size_t batches = 3,
                                           float noise = 0.35f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Batch all;
  all.dim = dim;
  for (int a = 0; a < articles; ++a) {
    std::vector<float> centre(dim);
    for (auto& c : centre) c = normal(rng);
    for (int p = 0; p < chunks_each; ++p) {
      all.ids.push_back(std::to_string(a) + ":" + std::to_string(p));
      all.text["text"].push_back("article " + std::to_string(a) + ", chunk " + std::to_string(p) +
                                 (p % 3 == 0 ? "\twith a tab,\na line break and ünïcode" : ""));
      all.ints["article_id"].push_back(a);
      all.ints["position"].push_back(p);
      for (std::size_t j = 0; j < dim; ++j) all.vectors.push_back(centre[j] + noise * normal(rng));
    }
  }
  std::vector<Batch> out;
  const std::size_t per = (all.rows() + batches - 1) / batches;
  for (std::size_t begin = 0; begin < all.rows(); begin += per) {
    out.push_back(all.slice(begin, std::min(all.rows(), begin + per)));
    out.back().seq = out.size() - 1;
  }
  return out;
}

inline Batch concat(const std::vector<Batch>& batches) {
  Batch all = batches.at(0);
  for (std::size_t i = 1; i < batches.size(); ++i) all.append(batches[i]);
  return all;
}

inline std::vector<float> unit(const float* v, std::size_t dim) {
  double n2 = 0;
  for (std::size_t j = 0; j < dim; ++j) n2 += double(v[j]) * v[j];
  std::vector<float> out(v, v + dim);
  for (auto& x : out) x = static_cast<float>(x / std::sqrt(n2));
  return out;
}

struct BruteHit {
  std::size_t row;
  double cosine;
};

// Exact cosine top-k of `query` over the rows of `corpus`, computed in double precision.
inline std::vector<BruteHit> brute_force_top_k(const Batch& corpus, const float* query, std::size_t k) {
  const auto q = unit(query, corpus.dim);
  std::vector<BruteHit> all;
  for (std::size_t r = 0; r < corpus.rows(); ++r) {
    const auto c = unit(corpus.vector(r), corpus.dim);
    double dot = 0;
    for (std::size_t j = 0; j < corpus.dim; ++j) dot += double(q[j]) * c[j];
    all.push_back({r, dot});
  }
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(k, all.size())), all.end(),
                    [](const BruteHit& a, const BruteHit& b) { return a.cosine > b.cosine; });
  all.resize(std::min(k, all.size()));
  return all;
}

// Builds a retrieve.index stage over `chunks` with `params`; the context keeps the folder.
// One FAISS thread unless `params` say otherwise: on these tiny corpora OpenMP's spin-waiting
// costs more than it saves, and seconds when the machine is busy.
inline std::unique_ptr<TestContext> build_index(const std::vector<Batch>& chunks,
                                                std::map<std::string, std::string> params = {}) {
  params.try_emplace("threads", "1");
  auto ctx = std::make_unique<TestContext>("retrieve.index", params);
  auto stage = ctx->make_stage();
  std::vector<StageInput> inputs{{"chunks", {}, chunks}};
  run_barrier(dynamic_cast<BarrierStage&>(*stage), *ctx, inputs);
  return ctx;
}

}  // namespace lvmflow::testing

#include "stages/retrieve/topk_scoring.hpp"

#include <algorithm>
#include <unordered_set>

namespace lvmflow {

SearchHits drop_excluded(const SearchHits& hits, std::size_t k,
                         const std::vector<std::vector<std::int64_t>>& excluded) {
  SearchHits out;
  out.queries = hits.queries;
  out.k = k;
  out.rows.assign(hits.queries * k, -1);
  out.scores.assign(hits.queries * k, 0.0f);
  for (std::size_t q = 0; q < hits.queries; ++q) {
    const std::vector<std::int64_t>* drop = excluded.empty() ? nullptr : &excluded[q];
    std::size_t kept = 0;
    for (std::size_t i = 0; i < hits.k && kept < k; ++i) {
      const std::int64_t row = hits.rows_of(q)[i];
      if (row < 0) break;   // FAISS pads missing hits with -1 at the end
      if (drop && std::find(drop->begin(), drop->end(), row) != drop->end()) continue;
      out.rows[q * k + kept] = row;
      out.scores[q * k + kept] = hits.scores_of(q)[i];
      ++kept;
    }
  }
  return out;
}

std::vector<std::size_t> target_ranks(const SearchHits& hits, const std::vector<std::int64_t>& targets) {
  std::vector<std::size_t> ranks(hits.queries, 0);
  for (std::size_t q = 0; q < hits.queries; ++q) {
    if (targets[q] < 0) continue;
    const std::int64_t* rows = hits.rows_of(q);
    for (std::size_t i = 0; i < hits.k; ++i)
      if (rows[i] == targets[q]) {
        ranks[q] = i + 1;
        break;
      }
  }
  return ranks;
}

double top_k_accuracy(const std::vector<std::size_t>& ranks, std::size_t k) {
  if (ranks.empty()) return 0.0;
  std::size_t hits = 0;
  for (std::size_t r : ranks) hits += (r >= 1 && r <= k);
  return static_cast<double>(hits) / static_cast<double>(ranks.size());
}

double recall_at_k(const SearchHits& approximate, const SearchHits& exact, std::size_t k) {
  double sum = 0;
  std::size_t counted = 0;
  for (std::size_t q = 0; q < exact.queries; ++q) {
    std::unordered_set<std::int64_t> truth;
    for (std::size_t i = 0; i < std::min(k, exact.k); ++i)
      if (exact.rows_of(q)[i] >= 0) truth.insert(exact.rows_of(q)[i]);
    if (truth.empty()) continue;
    std::size_t found = 0;
    for (std::size_t i = 0; i < std::min(k, approximate.k); ++i)
      found += truth.count(approximate.rows_of(q)[i]);
    sum += static_cast<double>(found) / static_cast<double>(truth.size());
    ++counted;
  }
  return counted ? sum / static_cast<double>(counted) : 0.0;
}

}  // namespace lvmflow

#pragma once
// Scoring of top-k result lists for retrieve.eval: where the true next chunk lands, how often
// it is within the top k, and how much of the exact top k an approximate index finds.
#include <cstdint>
#include <vector>

#include "stages/retrieve/vector_index.hpp"

namespace lvmflow {

// Keeps, for each query, the first `k` hits whose row is not in excluded[query] (a query's
// own context chunks, say). Search with k + max(excluded size) to still have k left.
// `excluded` is empty (exclude nothing) or has one entry per query.
SearchHits drop_excluded(const SearchHits& hits, std::size_t k,
                         const std::vector<std::vector<std::int64_t>>& excluded);

// 1-based rank of targets[q] in query q's hits; 0 when it is not there (or targets[q] < 0).
std::vector<std::size_t> target_ranks(const SearchHits& hits, const std::vector<std::int64_t>& targets);

// Share of queries whose target rank is in 1..k.
double top_k_accuracy(const std::vector<std::size_t>& ranks, std::size_t k);

// Mean over queries of |approximate top k ∩ exact top k| / |exact top k| (queries with no
// exact hit are left out). 1.0 means the approximate index returned exactly the exact set.
double recall_at_k(const SearchHits& approximate, const SearchHits& exact, std::size_t k);

}  // namespace lvmflow

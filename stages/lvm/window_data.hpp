#pragma once
// The windows of a seq.window stream gathered into one contiguous block, so training and
// evaluation can slice batches out of it. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"

namespace lvmflow {

struct WindowData {
  std::size_t context = 0;   // N
  std::size_t dim = 0;       // D
  std::vector<std::string> ids;
  std::vector<std::int64_t> article_ids, target_positions, splits;
  std::vector<float> values;   // rows x (N + 1) x D: the N context vectors, then the target

  std::size_t rows() const { return ids.size(); }
  std::size_t row_width() const { return (context + 1) * dim; }
  const float* context_of(std::size_t row) const { return values.data() + row * row_width(); }
  const float* target_of(std::size_t row) const { return context_of(row) + context * dim; }
  // Row indices of the windows in `split` (0 train, 1 validation), in stream order.
  std::vector<std::size_t> rows_in_split(std::int64_t split) const;
};

// Reads the window layout of one seq.window batch: N from its `context` column, D from the
// vector width. Throws lvmflow::Error naming `where` when the batch is not a window batch.
void window_layout(const Batch& batch, const std::string& where, std::size_t* context, std::size_t* dim);

// Gathers all rows of `batches` (seq.window output). Throws lvmflow::Error naming `where` when
// columns are missing or the layout changes between batches.
WindowData collect_windows(const std::vector<Batch>& batches, const std::string& where);

// A cheap fingerprint of the windows (ids, splits, vector bytes), used to key resume state.
std::string windows_fingerprint(const WindowData& data);

}  // namespace lvmflow

#pragma once
// The windows of a seq.window stream: small per-window columns in memory, vectors read in
// place from the window artifact's vectors.npy (memory-mapped, shared by the stages that read
// it). A window's context and target are N + 1 consecutive rows of that file, so training and
// evaluation slice batches out of it without a copy per window. Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"
#include "pipeline/vector_file.hpp"

namespace lvmflow {

struct WindowData {
  std::size_t context = 0;   // N
  std::size_t dim = 0;       // D
  std::vector<std::string> ids;
  std::vector<std::int64_t> article_ids, target_positions, splits, target_rows;
  std::shared_ptr<const VectorRows> vectors;   // target_rows index it

  std::size_t rows() const { return ids.size(); }
  // The N context vectors of window `row` (N x D floats), then its target (D floats).
  const float* context_of(std::size_t row) const { return vectors->row(std::size_t(target_rows[row]) - context); }
  const float* target_of(std::size_t row) const { return vectors->row(std::size_t(target_rows[row])); }
  // Row indices of the windows in `split` (0 train, 1 validation), in stream order.
  std::vector<std::size_t> rows_in_split(std::int64_t split) const;
};

// Maps the vectors of a seq.window artifact folder (its vectors.npy).
std::shared_ptr<const VectorRows> window_vectors(const std::filesystem::path& dir, const std::string& where);

// Appends the rows of one seq.window batch to `data`, whose `vectors` must be set. Throws
// lvmflow::Error naming `where` when the batch is not a window batch, its layout differs from
// what `data` holds, or a window points outside the vectors.
void add_windows(WindowData& data, const Batch& batch, const std::string& where);

// Streams all rows of `windows` (seq.window output) and maps its folder's vectors.npy.
WindowData collect_windows(const StageInput& windows, const std::string& where);

// A fingerprint of the windows (ids, splits, context rows and the bytes of their vectors),
// used to key resume state.
std::string windows_fingerprint(const WindowData& data);

}  // namespace lvmflow

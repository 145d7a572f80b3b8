#include "stages/lvm/window_data.hpp"

#include <algorithm>
#include <string_view>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"

namespace lvmflow {

std::vector<std::size_t> WindowData::rows_in_split(std::int64_t split) const {
  std::vector<std::size_t> out;
  for (std::size_t r = 0; r < rows(); ++r)
    if (splits[r] == split) out.push_back(r);
  return out;
}

std::shared_ptr<const VectorRows> window_vectors(const std::filesystem::path& dir, const std::string& where) {
  const auto path = dir / VectorFile::kFileName;
  if (dir.empty() || !std::filesystem::exists(path))
    throw Error(where, "the window input has no " + path.string() + ": it is not seq.window output of this lvmflow",
                "feed this stage from a seq.window stage (re-run it if it was made by an older lvmflow)");
  return VectorRows::map(path);
}

void add_windows(WindowData& data, const Batch& b, const std::string& where) {
  if (b.rows() == 0) return;
  b.check_consistent(where);
  for (const char* column : {"context", "article_id", "target_position", "split", "target_row"})
    if (!b.ints.count(column))
      throw Error(where, std::string("input has no integer column '") + column + "': it is not seq.window output",
                  "feed this stage from a seq.window stage");
  const auto& context = b.int_column("context");
  const auto& target_row = b.int_column("target_row");
  if (data.context == 0) {
    if (context[0] < 1) throw Error(where, "window batch says context " + std::to_string(context[0]), "feed this stage from seq.window");
    data.context = std::size_t(context[0]);
    data.dim = data.vectors->dim();
  }
  for (std::size_t r = 0; r < b.rows(); ++r) {
    if (context[r] != std::int64_t(data.context))
      throw Error(where, "window layout changes inside the stream", "feed this stage from one seq.window stage");
    if (target_row[r] < std::int64_t(data.context) || std::size_t(target_row[r]) >= data.vectors->rows())
      throw Error(where, "window '" + b.ids[r] + "' points at row " + std::to_string(target_row[r]) + " of " +
                             std::to_string(data.vectors->rows()) + " vectors",
                  "the seq.window artifact is damaged; re-run it with --force");
  }
  const auto append = [](std::vector<std::int64_t>& to, const std::vector<std::int64_t>& from) {
    to.insert(to.end(), from.begin(), from.end());
  };
  data.ids.insert(data.ids.end(), b.ids.begin(), b.ids.end());
  append(data.article_ids, b.int_column("article_id"));
  append(data.target_positions, b.int_column("target_position"));
  append(data.splits, b.int_column("split"));
  append(data.target_rows, target_row);
}

WindowData collect_windows(const StageInput& windows, const std::string& where) {
  WindowData data;
  data.vectors = window_vectors(windows.dir, where);
  windows.for_each_batch([&](const Batch& b) { add_windows(data, b, where); });
  return data;
}

std::string windows_fingerprint(const WindowData& data) {
  Sha256 h;
  h.field(std::to_string(data.context)).field(std::to_string(data.dim)).field(std::to_string(data.rows()));
  for (std::size_t r = 0; r < data.rows(); ++r)
    h.field(data.ids[r]).field(data.splits[r] ? "v" : "t").field(std::to_string(data.target_rows[r]));
  // The vector bytes, a block at a time, so the pass does not leave the whole file resident.
  const std::size_t total = data.vectors ? data.vectors->rows() : 0;
  for (std::size_t first = 0; first < total; first += VectorRows::kForgetAfterRows) {
    const std::size_t rows = std::min(VectorRows::kForgetAfterRows, total - first);
    h.field(std::to_string(fnv1a64(std::string_view(reinterpret_cast<const char*>(data.vectors->row(first)),
                                                     rows * data.vectors->dim() * sizeof(float)))));
    data.vectors->note_reads(rows);
  }
  return h.hex();
}

}  // namespace lvmflow

#include "stages/lvm/window_data.hpp"

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

void window_layout(const Batch& batch, const std::string& where, std::size_t* context, std::size_t* dim) {
  for (const char* column : {"context", "article_id", "target_position", "split"})
    if (!batch.ints.count(column))
      throw Error(where, std::string("input has no integer column '") + column + "': it is not seq.window output",
                  "feed this stage from a seq.window stage");
  const auto& ctx_column = batch.int_column("context");
  if (batch.rows() == 0 || batch.dim == 0)
    throw Error(where, "window batch has no rows or no vectors", "feed this stage from seq.window");
  std::int64_t n = ctx_column[0];
  if (n < 1 || batch.dim % static_cast<std::size_t>(n + 1) != 0)
    throw Error(where, "window vectors of width " + std::to_string(batch.dim) + " do not hold " +
                           std::to_string(n) + " context vectors plus a target",
                "feed this stage from seq.window");
  *context = static_cast<std::size_t>(n);
  *dim = batch.dim / static_cast<std::size_t>(n + 1);
}

WindowData collect_windows(const std::vector<Batch>& batches, const std::string& where) {
  WindowData data;
  for (const Batch& b : batches) {
    if (b.rows() == 0) continue;
    b.check_consistent(where);
    std::size_t n = 0, d = 0;
    window_layout(b, where, &n, &d);
    if (data.dim == 0) data.context = n, data.dim = d;
    if (n != data.context || d != data.dim)
      throw Error(where, "window layout changes inside the stream", "feed this stage from one seq.window stage");
    const auto& article = b.int_column("article_id");
    const auto& target = b.int_column("target_position");
    const auto& split = b.int_column("split");
    data.ids.insert(data.ids.end(), b.ids.begin(), b.ids.end());
    data.article_ids.insert(data.article_ids.end(), article.begin(), article.end());
    data.target_positions.insert(data.target_positions.end(), target.begin(), target.end());
    data.splits.insert(data.splits.end(), split.begin(), split.end());
    data.values.insert(data.values.end(), b.vectors.begin(), b.vectors.end());
  }
  return data;
}

std::string windows_fingerprint(const WindowData& data) {
  Sha256 h;
  h.field(std::to_string(data.context)).field(std::to_string(data.dim)).field(std::to_string(data.rows()));
  for (std::size_t r = 0; r < data.rows(); ++r) h.field(data.ids[r]).field(data.splits[r] ? "v" : "t");
  std::uint64_t vectors = fnv1a64(std::string_view(reinterpret_cast<const char*>(data.values.data()),
                                                   data.values.size() * sizeof(float)));
  h.field(std::to_string(vectors));
  return h.hex();
}

}  // namespace lvmflow

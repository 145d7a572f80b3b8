#pragma once
// The embedding item cache holds row references, not vectors: an entry says "row R of the
// vectors.npy committed under cache key K". The vectors then exist once in the store - in the
// encode artifact that computed them - and a rebuild still re-encodes only changed chunks.
// A reference whose artifact is gone (not committed, e.g. a run killed mid-encode, or removed)
// is a miss, so the item cache never serves a vector it cannot read back exactly.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "pipeline/stage.hpp"
#include "pipeline/vector_file.hpp"

namespace lvmflow {

// The item-cache value for row `row` of the artifact committed under `artifact_key`.
std::string vector_ref(const std::string& artifact_key, std::uint64_t row);

// Resolves references through the run's store. Thread-safe; opens each artifact's file once.
class VectorRefReader {
 public:
  explicit VectorRefReader(StageContext& ctx) : ctx_(ctx) {}
  // Copies the referenced row (`dim` floats) into `out`; false when it cannot be read back.
  bool read(const std::string& ref, std::size_t dim, float* out);

 private:
  StageContext& ctx_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const VectorFile>> files_;   // null: not readable
};

}  // namespace lvmflow

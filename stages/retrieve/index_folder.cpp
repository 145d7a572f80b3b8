#include "stages/retrieve/index_folder.hpp"

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"

namespace lvmflow {

namespace {
constexpr const char* kVectorsFile = "vectors.npy";
}

void save_index_folder(const std::filesystem::path& dir, const VectorIndex& index,
                       const std::vector<std::string>& ids, const std::vector<std::string>& texts,
                       const std::vector<float>& vectors, const std::string& where) {
  index.save(dir, where);
  ChunkTable::write(dir, ids, texts, where);
  if (!index.exact())
    write_npy(dir / kVectorsFile,
              {static_cast<std::int64_t>(index.size()), static_cast<std::int64_t>(index.dim())},
              vectors.data());
}

IndexFolder open_index_folder(const std::filesystem::path& dir, bool mmap, std::size_t nprobe,
                              std::size_t ef_search, const std::string& where) {
  IndexFolder folder{VectorIndex::load(dir, mmap, where), ChunkTable::open(dir, where)};
  if (folder.chunks.size() != folder.index.size())
    throw Error(where, (dir / "ids.txt").string() + " lists " + std::to_string(folder.chunks.size()) +
                           " chunks but the index holds " + std::to_string(folder.index.size()) + " vectors",
                "rebuild the retrieve.index stage");
  folder.index.set_nprobe(nprobe, where);
  folder.index.set_ef_search(ef_search, where);
  return folder;
}

std::optional<VectorIndex> load_exact_reference(const std::filesystem::path& dir,
                                                const VectorIndex& index, const std::string& where) {
  const auto path = dir / kVectorsFile;
  if (index.exact() || !std::filesystem::exists(path)) return std::nullopt;
  NpyArray array = read_npy(path);
  if (array.shape.size() != 2 || static_cast<std::size_t>(array.shape[0]) != index.size() ||
      static_cast<std::size_t>(array.shape[1]) != index.dim())
    throw Error(where, path.string() + " does not match the index (" + std::to_string(index.size()) +
                           " x " + std::to_string(index.dim()) + " expected)",
                "rebuild the retrieve.index stage");
  IndexOptions flat;
  flat.index = "Flat";
  flat.normalize = index.normalized();
  return VectorIndex::build(array.data, index.size(), index.dim(), flat, where);
}

}  // namespace lvmflow

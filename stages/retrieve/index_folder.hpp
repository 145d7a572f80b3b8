#pragma once
// The folder a retrieve.index stage commits, and how retrieve.search / retrieve.eval open it:
//   index.faiss, index.json   the FAISS index (vector_index.hpp)
//   ids.txt, texts.bin        index row -> chunk id and chunk text (chunk_table.hpp)
//   vectors.npy               the indexed (normalised) vectors, written only for approximate
//                             indexes: retrieve.eval's exact reference for recall
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "stages/retrieve/chunk_table.hpp"
#include "stages/retrieve/vector_index.hpp"

namespace lvmflow {

struct IndexFolder {
  VectorIndex index;
  ChunkTable chunks;
};

// Writes everything above; `vectors` are the rows exactly as indexed.
void save_index_folder(const std::filesystem::path& dir, const VectorIndex& index,
                       const std::vector<std::string>& ids, const std::vector<std::string>& texts,
                       const std::vector<float>& vectors, const std::string& where);

// Opens a committed folder; `nprobe` / `ef_search` override the stored knobs when non-zero.
IndexFolder open_index_folder(const std::filesystem::path& dir, bool mmap, std::size_t nprobe,
                              std::size_t ef_search, const std::string& where);

// An exact (Flat) index over vectors.npy, for measuring an approximate index against;
// nullopt when the folder has none (exact indexes need no reference).
std::optional<VectorIndex> load_exact_reference(const std::filesystem::path& dir,
                                                const VectorIndex& index, const std::string& where);

}  // namespace lvmflow

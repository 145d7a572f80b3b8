#pragma once
// What maps index rows back to chunks: ids.txt (one chunk id per line, row order) and
// texts.bin (the chunk texts), next to index.faiss in a retrieve.index folder.
//
// texts.bin is laid out for mmap, so a search stage touches only the texts it returns:
//   8 bytes  magic "LVMTXT01"
//   u64      count
//   u64      offsets[count + 1]   byte offsets into the blob (little-endian)
//   bytes    blob                 UTF-8 texts back to back
// From Python: n = int.from_bytes(b[8:16], "little");
//   off = numpy.frombuffer(b, "<u8", n + 1, 16); base = 16 + 8 * (n + 1);
//   text_i = b[base + int(off[i]):base + int(off[i + 1])].decode()
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lvmflow {

class ChunkTable {
 public:
  ChunkTable();
  ChunkTable(ChunkTable&&) noexcept;
  ChunkTable& operator=(ChunkTable&&) noexcept;
  ~ChunkTable();

  // Writes ids.txt and texts.bin; `texts` may be empty (then every text is "").
  static void write(const std::filesystem::path& dir, const std::vector<std::string>& ids,
                    const std::vector<std::string>& texts, const std::string& where);
  // Reads ids.txt and maps texts.bin; throws lvmflow::Error when they are missing or damaged.
  static ChunkTable open(const std::filesystem::path& dir, const std::string& where);

  std::size_t size() const { return ids_.size(); }
  const std::string& id(std::size_t row) const { return ids_[row]; }
  std::string_view text(std::size_t row) const;
  const std::vector<std::string>& ids() const { return ids_; }
  // chunk id -> row, built on each call (callers that need it keep it).
  std::unordered_map<std::string, std::size_t> rows_by_id() const;

 private:
  struct Mapping;
  std::vector<std::string> ids_;
  std::unique_ptr<Mapping> texts_;
};

}  // namespace lvmflow

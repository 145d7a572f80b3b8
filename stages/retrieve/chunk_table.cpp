#include "stages/retrieve/chunk_table.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "pipeline/error.hpp"

namespace lvmflow {
namespace {

constexpr char kMagic[8] = {'L', 'V', 'M', 'T', 'X', 'T', '0', '1'};
constexpr const char* kIdsFile = "ids.txt";
constexpr const char* kTextsFile = "texts.bin";

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

const std::string kRebuild = "rebuild the retrieve.index stage (delete its cache entry or use --force)";

}  // namespace

// A read-only mapping of texts.bin, unmapped on destruction.
struct ChunkTable::Mapping {
  const unsigned char* base = nullptr;
  std::size_t length = 0;
  std::size_t count = 0;
  const unsigned char* offsets = nullptr;
  const char* blob = nullptr;
  std::uint64_t blob_size = 0;
  ~Mapping() {
    if (base) munmap(const_cast<unsigned char*>(base), length);
  }
};

ChunkTable::ChunkTable() = default;
ChunkTable::ChunkTable(ChunkTable&&) noexcept = default;
ChunkTable& ChunkTable::operator=(ChunkTable&&) noexcept = default;
ChunkTable::~ChunkTable() = default;

void ChunkTable::write(const std::filesystem::path& dir, const std::vector<std::string>& ids,
                       const std::vector<std::string>& texts, const std::string& where) {
  if (!texts.empty() && texts.size() != ids.size())
    throw Error(where, std::to_string(texts.size()) + " texts for " + std::to_string(ids.size()) + " ids");
  {
    std::ofstream out(dir / kIdsFile, std::ios::binary | std::ios::trunc);
    for (const auto& id : ids) {
      if (id.find_first_of("\r\n") != std::string::npos)
        throw Error(where, "chunk id '" + id + "' contains a line break",
                    "chunk ids must be single-line, e.g. <article_id>:<position>");
      out << id << '\n';
    }
    if (!out.flush()) throw Error(where, "cannot write " + (dir / kIdsFile).string(), "check free disk space");
  }
  std::string header(kMagic, sizeof kMagic);
  put_u64(header, ids.size());
  std::uint64_t offset = 0;
  put_u64(header, 0);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    offset += texts.empty() ? 0 : texts[i].size();
    put_u64(header, offset);
  }
  std::ofstream out(dir / kTextsFile, std::ios::binary | std::ios::trunc);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const auto& t : texts) out.write(t.data(), static_cast<std::streamsize>(t.size()));
  if (!out.flush()) throw Error(where, "cannot write " + (dir / kTextsFile).string(), "check free disk space");
}

ChunkTable ChunkTable::open(const std::filesystem::path& dir, const std::string& where) {
  ChunkTable table;
  const auto ids_path = dir / kIdsFile;
  std::ifstream in(ids_path, std::ios::binary);
  if (!in) throw Error(where, "missing " + ids_path.string(), kRebuild);
  for (std::string line; std::getline(in, line);) table.ids_.push_back(std::move(line));

  const auto texts_path = dir / kTextsFile;
  const std::string damaged = texts_path.string() + " is damaged";
  int fd = ::open(texts_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(where, "cannot open " + texts_path.string() + ": " + std::strerror(errno), kRebuild);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(where, "cannot stat " + texts_path.string(), kRebuild);
  }
  auto map = std::make_unique<Mapping>();
  map->length = static_cast<std::size_t>(st.st_size);
  if (map->length < 16) {
    ::close(fd);
    throw Error(where, damaged + " (too short)", kRebuild);
  }
  void* p = mmap(nullptr, map->length, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw Error(where, "cannot map " + texts_path.string() + ": " + std::strerror(errno), kRebuild);
  map->base = static_cast<const unsigned char*>(p);
  if (std::memcmp(map->base, kMagic, sizeof kMagic) != 0) throw Error(where, damaged + " (bad magic)", kRebuild);
  map->count = get_u64(map->base + 8);
  if (map->count != table.ids_.size())
    throw Error(where, texts_path.string() + " holds " + std::to_string(map->count) + " texts but " +
                           ids_path.string() + " " + std::to_string(table.ids_.size()) + " ids",
                kRebuild);
  const std::size_t header = 16 + 8 * (map->count + 1);
  if (map->length < header) throw Error(where, damaged + " (truncated offsets)", kRebuild);
  map->offsets = map->base + 16;
  map->blob = reinterpret_cast<const char*>(map->base + header);
  map->blob_size = map->length - header;
  // Offsets must rise and end inside the file, so text() can never read past the mapping.
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i <= map->count; ++i) {
    std::uint64_t o = get_u64(map->offsets + 8 * i);
    if (o < previous || o > map->blob_size) throw Error(where, damaged + " (bad offset table)", kRebuild);
    previous = o;
  }
  table.texts_ = std::move(map);
  return table;
}

std::string_view ChunkTable::text(std::size_t row) const {
  const auto begin = get_u64(texts_->offsets + 8 * row);
  const auto end = get_u64(texts_->offsets + 8 * (row + 1));
  return {texts_->blob + begin, static_cast<std::size_t>(end - begin)};
}

std::unordered_map<std::string, std::size_t> ChunkTable::rows_by_id() const {
  std::unordered_map<std::string, std::size_t> rows;
  rows.reserve(ids_.size());
  for (std::size_t i = 0; i < ids_.size(); ++i) rows.emplace(ids_[i], i);
  return rows;
}

}  // namespace lvmflow

#include "pipeline/vector_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <system_error>
#include <tuple>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

namespace {

// Value of `key` in the header's Python dict literal, up to the next ',' or ')' after it.
std::string header_value(const std::string& header, const std::string& key, const std::string& where) {
  auto at = header.find("'" + key + "':");
  if (at == std::string::npos) throw Error(where, "npy header has no '" + key + "'", "rewrite the file with numpy.save");
  at = header.find_first_not_of(' ', at + key.size() + 3);
  auto end = header[at] == '(' ? header.find(')', at) + 1 : header.find_first_of(",}", at);
  return header.substr(at, end - at);
}

}  // namespace

VectorFile::VectorFile(const fs::path& path) : path_(path) {
  const std::string where = path.string();
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0)
    throw Error(where, std::string("cannot open vectors: ") + std::strerror(errno),
                "re-run the stage that wrote them (lvmflow run --force <stage>)");
  char head[10];
  if (::pread(fd_, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head) || std::memcmp(head, "\x93NUMPY", 6) != 0) {
    ::close(fd_);
    throw Error(where, "not a .npy file", "re-run the stage that wrote it");
  }
  const bool v1 = head[6] == 1;
  std::uint32_t header_len = 0;
  std::size_t prefix = v1 ? 10 : 12;
  if (v1) {
    header_len = static_cast<unsigned char>(head[8]) | (static_cast<unsigned char>(head[9]) << 8);
  } else {
    unsigned char len4[4];
    if (::pread(fd_, len4, 4, 8) != 4) header_len = 0;
    else header_len = len4[0] | (len4[1] << 8) | (len4[2] << 16) | (std::uint32_t(len4[3]) << 24);
  }
  std::string header(header_len, '\0');
  if (header_len == 0 || ::pread(fd_, header.data(), header_len, static_cast<off_t>(prefix)) != static_cast<ssize_t>(header_len)) {
    ::close(fd_);
    throw Error(where, "truncated .npy header", "re-run the stage that wrote it");
  }
  try {
    const std::string descr = header_value(header, "descr", where);
    const std::string order = header_value(header, "fortran_order", where);
    const std::string shape = header_value(header, "shape", where);
    std::size_t comma = shape.find(',');
    if (descr != "'<f4'" || order != "False" || comma == std::string::npos)
      throw Error(where, "expected a 2-D little-endian float32 C-order array, found descr " + descr + ", shape " + shape,
                  "write vectors as float32 rows");
    rows_ = std::stoull(shape.substr(1, comma - 1));
    dim_ = std::stoull(shape.substr(comma + 1));
  } catch (const Error&) {
    ::close(fd_);
    throw;
  } catch (const std::exception&) {
    ::close(fd_);
    throw Error(where, "unreadable .npy shape in header '" + header + "'", "re-run the stage that wrote it");
  }
  data_offset_ = prefix + header_len;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec || size < data_offset_ + rows_ * dim_ * sizeof(float)) {
    ::close(fd_);
    throw Error(where, "file is shorter than its " + std::to_string(rows_) + " x " + std::to_string(dim_) + " header says",
                "re-run the stage that wrote it");
  }
}

VectorFile::~VectorFile() {
  if (fd_ >= 0) ::close(fd_);
}

void VectorFile::read_rows(std::size_t first, std::size_t count, float* out) const {
  if (first + count > rows_)
    throw Error(path_.string(), "rows " + std::to_string(first) + ".." + std::to_string(first + count) +
                                    " requested from a file of " + std::to_string(rows_) + " rows",
                "the artifact is damaged or mixed up; re-run the stage that wrote it");
  auto* dst = reinterpret_cast<char*>(out);
  std::size_t left = count * dim_ * sizeof(float);
  off_t at = static_cast<off_t>(data_offset_ + first * dim_ * sizeof(float));
  while (left > 0) {
    ssize_t got = ::pread(fd_, dst, left, at);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw Error(path_.string(), "short read of vector rows", "check the disk; re-run the stage that wrote them");
    dst += got, at += got, left -= static_cast<std::size_t>(got);
  }
}

std::shared_ptr<const VectorRows> VectorRows::map(const fs::path& npy) {
  VectorFile file(npy);
  struct stat st {};
  if (::fstat(file.fd_, &st) != 0) throw Error(npy.string(), std::string("cannot stat: ") + std::strerror(errno));
  static std::mutex mutex;
  // Size and modification time join the key: a deleted file's inode number may come back.
  using Key = std::tuple<dev_t, ino_t, off_t, std::int64_t>;
  static std::map<Key, std::weak_ptr<const VectorRows>> shared;
  std::lock_guard lock(mutex);
  auto& slot = shared[Key{st.st_dev, st.st_ino, st.st_size, std::int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec}];
  if (auto existing = slot.lock()) return existing;
  std::shared_ptr<VectorRows> rows(new VectorRows());
  rows->rows_ = file.rows();
  rows->dim_ = file.dim();
  rows->mapping_bytes_ = file.data_offset_ + file.rows() * file.dim() * sizeof(float);
  if (rows->rows_ > 0) {
    void* p = ::mmap(nullptr, rows->mapping_bytes_, PROT_READ, MAP_SHARED, file.fd_, 0);
    if (p == MAP_FAILED) throw Error(npy.string(), std::string("cannot map vectors: ") + std::strerror(errno));
    // Windows are gathered in shuffled order: no readahead, no mapping of neighbours.
    ::madvise(p, rows->mapping_bytes_, MADV_RANDOM);
    rows->mapping_ = p;
    rows->data_ = reinterpret_cast<const float*>(static_cast<const char*>(p) + file.data_offset_);
  }
  slot = rows;
  return rows;
}

std::shared_ptr<const VectorRows> VectorRows::in_memory(std::vector<float> values, std::size_t dim) {
  std::shared_ptr<VectorRows> rows(new VectorRows());
  rows->dim_ = dim;
  rows->rows_ = dim ? values.size() / dim : 0;
  rows->owned_ = std::move(values);
  rows->data_ = rows->owned_.data();
  return rows;
}

void VectorRows::note_reads(std::size_t rows) const {
  if (!mapping_) return;
  if (rows_read_.fetch_add(rows) + rows < kForgetAfterRows) return;
  rows_read_ = 0;
  ::madvise(mapping_, mapping_bytes_, MADV_DONTNEED);
}

VectorRows::~VectorRows() {
  if (mapping_) ::munmap(mapping_, mapping_bytes_);
}

void link_or_copy(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(from, to, ec);
  if (!ec) return;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(to.string(), "cannot link or copy " + from.string() + ": " + ec.message(), "check free disk space");
}

}  // namespace lvmflow

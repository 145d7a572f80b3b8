#include "stages/common/npy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <sstream>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
// The streaming writer reserves a fixed-size header so the final row count can be patched in
// place; 128 bytes hold any 2-D shape and keep the data 64-byte aligned as numpy does.
constexpr std::size_t kStreamHeaderBytes = 128;

std::string shape_tuple(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";  // Python's one-element tuple
  return s + ")";
}

// Version 1.0 header for a little-endian float32 C-order array, padded with spaces to
// `total` bytes (magic + version + length + dict + '\n'); total = 0 pads to the next 64.
std::string make_header(const std::vector<std::int64_t>& shape, std::size_t total = 0) {
  std::string dict =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  const std::size_t fixed = kMagicLen + 2 + 2;
  std::size_t need = fixed + dict.size() + 1;
  if (total == 0) total = (need + 63) / 64 * 64;
  if (need > total || total - fixed > 0xFFFF)
    throw Error("npy", "array shape " + shape_tuple(shape) + " does not fit the npy header");
  dict.append(total - need, ' ');
  dict += '\n';
  std::string out(kMagic, kMagicLen);
  out += static_cast<char>(1);
  out += static_cast<char>(0);
  const std::size_t hlen = dict.size();
  out += static_cast<char>(hlen & 0xFF);
  out += static_cast<char>(hlen >> 8);
  return out + dict;
}

void fsync_path(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Minimal reader for the Python-literal dict in an npy header.
class NpyHeaderParser {
 public:
  NpyHeaderParser(std::string text, std::string where) : s_(std::move(text)), where_(std::move(where)) {}

  void parse(std::string& descr, bool& fortran, std::vector<std::int64_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip();
      if (peek() == '}') break;
      std::string key = quoted();
      expect(':');
      if (key == "descr") {
        descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        skip();
        if (s_.compare(pos_, 4, "True") == 0) {
          fortran = true;
          pos_ += 4;
        } else if (s_.compare(pos_, 5, "False") == 0) {
          fortran = false;
          pos_ += 5;
        } else {
          fail("fortran_order must be True or False");
        }
        have_order = true;
      } else if (key == "shape") {
        expect('(');
        while (true) {
          skip();
          if (peek() == ')') { ++pos_; break; }
          std::size_t start = pos_;
          while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) ++pos_;
          if (start == pos_) fail("expected a dimension in shape");
          shape.push_back(std::stoll(s_.substr(start, pos_ - start)));
          skip();
          if (peek() == ',') ++pos_;
        }
        have_shape = true;
      } else {
        fail("unknown header key '" + key + "'");
      }
      skip();
      if (peek() == ',') ++pos_;
    }
    if (!have_descr || !have_order || !have_shape)
      fail("header lacks descr, fortran_order or shape");
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw Error(where_, "bad .npy header: " + why, "write the file with numpy.save");
  }
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() {
    if (pos_ >= s_.size()) fail("header ends early");
    return s_[pos_];
  }
  void expect(char c) {
    skip();
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string quoted() {
    skip();
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    std::size_t end = s_.find(q, pos_ + 1);
    if (end == std::string::npos) fail("unterminated string");
    std::string out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return out;
  }
  std::string s_, where_;
  std::size_t pos_ = 0;
};

}  // namespace

NpyWriter::NpyWriter(const std::filesystem::path& path, std::size_t cols) : path_(path), cols_(cols) {
  out_.open(path, std::ios::binary | std::ios::trunc);
  if (!out_)
    throw Error(path.string(), "cannot create .npy file", "check that the folder exists and is writable");
  const std::string header =
      make_header({0, static_cast<std::int64_t>(cols_)}, kStreamHeaderBytes);
  out_.write(header.data(), static_cast<std::streamsize>(header.size()));
}

void NpyWriter::append(const float* rows_data, std::size_t rows) {
  if (closed_) throw Error(path_.string(), "append after close");
  out_.write(reinterpret_cast<const char*>(rows_data),
             static_cast<std::streamsize>(rows * cols_ * sizeof(float)));
  if (!out_) throw Error(path_.string(), "failed writing .npy rows", "check free disk space");
  rows_ += rows;
}

void NpyWriter::close() {
  if (closed_) return;
  closed_ = true;
  const std::string header = make_header(
      {static_cast<std::int64_t>(rows_), static_cast<std::int64_t>(cols_)}, kStreamHeaderBytes);
  out_.seekp(0);
  out_.write(header.data(), static_cast<std::streamsize>(header.size()));
  out_.flush();
  const bool ok = static_cast<bool>(out_);
  out_.close();
  if (!ok) throw Error(path_.string(), "failed finishing .npy file", "check free disk space");
  fsync_path(path_);
}

NpyWriter::~NpyWriter() {
  try {
    close();
  } catch (...) {
    // A destructor must not throw; callers who care call close() themselves.
  }
}

NpyArray read_npy(const std::filesystem::path& path) {
  const std::string where = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(where, "cannot open .npy file", "check that the file exists and is readable");
  char pre[kMagicLen + 2];
  if (!in.read(pre, sizeof pre) || std::memcmp(pre, kMagic, kMagicLen) != 0)
    throw Error(where, "not a .npy file (bad magic)", "write the file with numpy.save");
  const int major = static_cast<unsigned char>(pre[kMagicLen]);
  std::uint32_t hlen = 0;
  if (major == 1) {
    unsigned char b[2];
    if (!in.read(reinterpret_cast<char*>(b), 2)) throw Error(where, "truncated .npy header");
    hlen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    if (!in.read(reinterpret_cast<char*>(b), 4)) throw Error(where, "truncated .npy header");
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (std::uint32_t(b[3]) << 24);
    if (hlen > (1u << 24)) throw Error(where, "implausible .npy header length");
  } else {
    throw Error(where, "unsupported .npy version " + std::to_string(major));
  }
  std::string header(hlen, '\0');
  if (!in.read(header.data(), hlen)) throw Error(where, "truncated .npy header");

  std::string descr;
  bool fortran = false;
  NpyArray arr;
  NpyHeaderParser(header, where).parse(descr, fortran, arr.shape);
  if (fortran)
    throw Error(where, "Fortran-order arrays are not supported", "save with numpy.ascontiguousarray");
  std::size_t elem;
  if (descr == "<f4") elem = 4;
  else if (descr == "<f8") elem = 8;
  else
    throw Error(where, "dtype " + descr + " is not float32/float64 little-endian",
                "convert with arr.astype('<f4') before saving");
  std::size_t count = 1;
  for (auto d : arr.shape) count *= static_cast<std::size_t>(d);
  std::vector<char> raw(count * elem);
  if (!in.read(raw.data(), static_cast<std::streamsize>(raw.size())))
    throw Error(where, "truncated .npy data: expected " + std::to_string(raw.size()) + " bytes for shape " +
                           shape_tuple(arr.shape),
                "the file was not written completely");
  arr.data.resize(count);
  if (elem == 4) {
    std::memcpy(arr.data.data(), raw.data(), raw.size());
  } else {
    for (std::size_t i = 0; i < count; ++i) {
      double d;
      std::memcpy(&d, raw.data() + 8 * i, 8);
      arr.data[i] = static_cast<float>(d);
    }
  }
  return arr;
}

void write_npy(const std::filesystem::path& path, const std::vector<std::int64_t>& shape,
               const float* data) {
  const std::string where = path.string();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(where, "cannot create .npy file", "check that the folder exists and is writable");
  const std::string header = make_header(shape);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  std::size_t count = 1;
  for (auto d : shape) count *= static_cast<std::size_t>(d);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(float)));
  out.flush();
  if (!out) throw Error(where, "failed writing .npy file", "check free disk space");
}

}  // namespace lvmflow

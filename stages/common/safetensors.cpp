#include "stages/common/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"

namespace lvmflow {

namespace {

struct DTypeName {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeName kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::F64, "F64", 8}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I8, "I8", 1},   {DType::U8, "U8", 1},   {DType::BOOL, "BOOL", 1}};

// The reference implementation refuses headers above 100 MB; so do we, before allocating.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
  std::uint32_t exp = (h >> 10) & 0x1F;
  std::uint32_t mant = h & 0x3FF;
  std::uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal half: renormalise into a float32 normal
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | std::uint32_t(127 - 15 - e) << 23 | (mant & 0x3FF) << 13;
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | mant << 13;  // inf / nan
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

const char* to_string(DType d) {
  for (const auto& t : kDTypes)
    if (t.dtype == d) return t.name;
  return "?";
}

std::size_t dtype_size(DType d) {
  for (const auto& t : kDTypes)
    if (t.dtype == d) return t.size;
  return 0;
}

std::int64_t TensorView::numel() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<float> TensorView::to_float() const {
  const std::size_t n = static_cast<std::size_t>(numel());
  std::vector<float> out(n);
  switch (dtype) {
    case DType::F32:
      std::memcpy(out.data(), data, n * 4);
      break;
    case DType::F16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      break;
    case DType::BF16:
      for (std::size_t i = 0; i < n; ++i) {
        std::uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        std::uint32_t bits = std::uint32_t(h) << 16;  // bf16 is the top half of a float32
        std::memcpy(&out[i], &bits, 4);
      }
      break;
    case DType::F64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, data + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    default:
      throw Error("tensor " + name,
                  std::string("cannot convert dtype ") + to_string(dtype) + " to float32",
                  "store the tensor as F32, F16 or BF16");
  }
  return out;
}

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : path_(path) {
  const std::string where = path.string();
  int fd = ::open(where.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(where, std::string("cannot open safetensors file: ") + std::strerror(errno),
                "check that the file exists and is readable");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(where, "cannot stat safetensors file");
  }
  map_size_ = static_cast<std::size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    throw Error(where, "truncated safetensors file (" + std::to_string(map_size_) +
                           " bytes, shorter than the 8-byte header length)",
                "re-download or re-write the file");
  }
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file alive
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw Error(where, std::string("cannot map safetensors file: ") + std::strerror(errno));
  }
  try {
    const auto* bytes = static_cast<const std::uint8_t*>(map_);
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];  // little-endian
    if (header_len > kMaxHeaderBytes)
      throw Error(where, "safetensors header length " + std::to_string(header_len) +
                             " is implausible (over 100 MB)",
                  "the file is not a safetensors file or is damaged");
    if (8 + header_len > map_size_)
      throw Error(where, "truncated safetensors file: header claims " +
                             std::to_string(header_len) + " bytes but the file has " +
                             std::to_string(map_size_ - 8) + " after the length",
                  "re-download or re-write the file");
    std::string_view header_text(reinterpret_cast<const char*>(bytes + 8), header_len);
    Json header = Json::parse(header_text, where + " (safetensors header)");
    if (!header.is_object())
      throw Error(where, "safetensors header is not a JSON object", "the file is damaged");
    const std::uint8_t* buffer = bytes + 8 + header_len;
    const std::uint64_t buffer_len = map_size_ - 8 - header_len;

    for (const auto& [name, entry] : header.as_object()) {
      if (name == "__metadata__") {
        if (!entry.is_object()) throw Error(where, "__metadata__ is not a JSON object");
        for (const auto& [k, v] : entry.as_object())
          metadata_[k] = v.is_string() ? v.as_string() : v.dump();
        continue;
      }
      const std::string tw = where + ": tensor '" + name + "'";
      if (!entry.is_object()) throw Error(tw, "header entry is not an object", "the file is damaged");
      TensorView t;
      t.name = name;
      const std::string& dt = entry.at("dtype", tw).as_string(tw + " dtype");
      bool known = false;
      for (const auto& d : kDTypes)
        if (dt == d.name) {
          t.dtype = d.dtype;
          known = true;
        }
      if (!known)
        throw Error(tw, "unsupported dtype " + dt,
                    "lvmflow reads F32, F16, BF16, F64, I64, I32, I8, U8 and BOOL tensors");
      std::uint64_t count = 1;
      for (const auto& d : entry.at("shape", tw).as_array(tw + " shape")) {
        std::int64_t v = d.as_int(tw + " shape");
        if (v < 0) throw Error(tw, "negative dimension in shape");
        t.shape.push_back(v);
        if (v != 0 && count > (UINT64_MAX / static_cast<std::uint64_t>(v)))
          throw Error(tw, "shape overflows");
        count *= static_cast<std::uint64_t>(v);
      }
      const auto& offs = entry.at("data_offsets", tw).as_array(tw + " data_offsets");
      if (offs.size() != 2) throw Error(tw, "data_offsets must have two entries");
      std::int64_t begin = offs[0].as_int(tw + " data_offsets");
      std::int64_t end = offs[1].as_int(tw + " data_offsets");
      if (begin < 0 || end < begin || static_cast<std::uint64_t>(end) > buffer_len)
        throw Error(tw, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                            "] lie outside the " + std::to_string(buffer_len) + "-byte data buffer",
                    "the file is truncated or damaged");
      const std::uint64_t expected = count * dtype_size(t.dtype);
      if (static_cast<std::uint64_t>(end - begin) != expected)
        throw Error(tw, "holds " + std::to_string(end - begin) + " bytes but " + dt + " " +
                            shape_text(t.shape) + " needs " + std::to_string(expected),
                    "the file is damaged");
      t.data = buffer + begin;
      t.nbytes = static_cast<std::size_t>(end - begin);
      tensors_.emplace(name, std::move(t));
    }
  } catch (...) {
    ::munmap(map_, map_size_);
    map_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, map_size_);
}

const TensorView& SafetensorsFile::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw Error(path_.string(), "tensor '" + name + "' is missing",
                "the file does not match the expected model layout");
  return it->second;
}

const TensorView& SafetensorsFile::tensor(const std::string& name,
                                          const std::vector<std::int64_t>& expected) const {
  const TensorView& t = tensor(name);
  if (t.shape != expected)
    throw Error(path_.string(), "tensor '" + name + "' has shape " + shape_text(t.shape) +
                                    ", expected " + shape_text(expected),
                "the weights do not match the model config");
  return t;
}

void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();
  std::vector<const TensorToWrite*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorToWrite* a, const TensorToWrite* b) { return a->name < b->name; });

  Json header{Json::Object{}};
  if (!metadata.empty()) {
    Json meta{Json::Object{}};
    for (const auto& [k, v] : metadata) meta[k] = Json(v);
    header["__metadata__"] = std::move(meta);
  }
  std::uint64_t offset = 0;
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const auto& t = *sorted[i];
    if (t.name == "__metadata__") throw Error(where, "tensor name __metadata__ is reserved");
    if (i && sorted[i - 1]->name == t.name)
      throw Error(where, "tensor '" + t.name + "' given twice");
    std::uint64_t count = 1;
    Json::Array shape;
    for (auto d : t.shape) {
      count *= static_cast<std::uint64_t>(d);
      shape.emplace_back(d);
    }
    if (count * dtype_size(t.dtype) != t.nbytes)
      throw Error(where, "tensor '" + t.name + "': " + std::to_string(t.nbytes) +
                             " bytes given but " + to_string(t.dtype) + " " + shape_text(t.shape) +
                             " needs " + std::to_string(count * dtype_size(t.dtype)));
    Json entry{Json::Object{}};
    entry["dtype"] = Json(to_string(t.dtype));
    entry["shape"] = Json(std::move(shape));
    entry["data_offsets"] = Json(Json::Array{Json(offset), Json(offset + t.nbytes)});
    header[t.name] = std::move(entry);
    offset += t.nbytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data buffer starts 8-byte aligned, as the reference writer does.
  while ((8 + text.size()) % 8 != 0) text += ' ';

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(where, "cannot write safetensors file", "check that the folder exists and is writable");
  std::uint8_t len[8];
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::uint8_t>(n >> (8 * i));
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto* t : sorted)
    out.write(static_cast<const char*>(t->data), static_cast<std::streamsize>(t->nbytes));
  out.flush();
  if (!out) throw Error(where, "failed writing safetensors file", "check free disk space");
}

}  // namespace lvmflow

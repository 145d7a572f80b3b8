#pragma once
// Reader and writer for the safetensors format (https://huggingface.co/docs/safetensors):
// 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw tensor bytes. The reader maps the file (mmap) and never copies tensor data.
// Torch-free on purpose: the engine and tools can use it without libtorch headers.
// Ours because no Debian package offers a C++ safetensors reader (only the Rust crate and
// the Python bindings exist); the format is small and fully specified.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace lvmflow {

enum class DType { F32, F16, BF16, F64, I64, I32, I8, U8, BOOL };
const char* to_string(DType d);
std::size_t dtype_size(DType d);

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const std::uint8_t* data = nullptr;   // points into the mapped file
  std::size_t nbytes = 0;
  std::int64_t numel() const;
  // Converts F32/F16/BF16 data to float32 (copy).
  std::vector<float> to_float() const;
};

class SafetensorsFile {
 public:
  // Throws lvmflow::Error naming the file and what is wrong (truncated, bad header, offsets).
  explicit SafetensorsFile(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws lvmflow::Error naming the tensor if it is absent.
  const TensorView& tensor(const std::string& name) const;
  // Throws lvmflow::Error naming the tensor if its shape differs from `expected`.
  const TensorView& tensor(const std::string& name, const std::vector<std::int64_t>& expected) const;
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  void* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<std::int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

// Writes a safetensors file (tensors sorted by name, as the reference implementation does).
// Written to `path` directly; callers inside a stage write into their artifact dir, which
// the engine commits atomically.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lvmflow

// Damaged input never crashes the readers: random truncations and byte flips of valid JSON,
// safetensors and .npy files either still parse or throw lvmflow::Error. Run under
// -DLVMFLOW_SANITIZE=ON to catch out-of-bounds reads as well.
#include <gtest/gtest.h>

#include <fstream>
#include <cstring>
#include <random>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/common/safetensors.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream(p, std::ios::binary | std::ios::trunc).write(s.data(), static_cast<std::streamsize>(s.size()));
}

// 300 damaged variants of `good`: a truncation, then 1-4 random byte changes, biased towards
// the header where the parsing happens.
std::vector<std::string> damaged_variants(const std::string& good, std::size_t header_bytes, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  for (int i = 0; i < 300; ++i) {
    std::string s = good;
    if (i % 3 == 0) s.resize(rng() % (s.size() + 1));
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips && !s.empty(); ++f) {
      std::size_t limit = std::min(s.size(), rng() % 2 ? header_bytes : s.size());
      if (limit == 0) limit = s.size();
      s[rng() % limit] = static_cast<char>(rng() % 256);
    }
    out.push_back(std::move(s));
  }
  return out;
}

template <class Fn>
void expect_parses_or_lvmflow_error(Fn fn, int& errors) {
  try {
    fn();
  } catch (const Error&) {
    ++errors;
  }
  // Any other exception type (or a crash) fails the test.
}

TEST(Corruption, JsonNeverCrashes) {
  const std::string good =
      R"({"d_model": 768, "eps": 1e-06, "name": "gtr-t5 \u00e9", "list": [1, 2.5, true, null, {"a": []}]})";
  int errors = 0;
  for (const auto& s : damaged_variants(good, good.size(), 1))
    expect_parses_or_lvmflow_error([&] { Json::parse(s, "fuzz.json").dump(); }, errors);
  EXPECT_GT(errors, 100);
}

TEST(Corruption, SafetensorsNeverCrashes) {
  fs::path dir = lvmflow::testing::make_temp_dir("lvmflow-fuzz");
  std::vector<float> w(24, 0.5f);
  std::vector<std::uint16_t> h(8, 0x3C00);
  write_safetensors(dir / "good.safetensors",
                    {{"a.weight", DType::F32, {4, 6}, w.data(), 96}, {"b", DType::BF16, {2, 4}, h.data(), 16}},
                    {{"format", "pt"}});
  const std::string good = read_bytes(dir / "good.safetensors");
  std::uint64_t header_len;
  std::memcpy(&header_len, good.data(), 8);
  int errors = 0, i = 0;
  for (const auto& s : damaged_variants(good, 8 + header_len, 2)) {
    const fs::path p = dir / ("d" + std::to_string(i++) + ".safetensors");
    write_bytes(p, s);
    expect_parses_or_lvmflow_error(
        [&] {
          SafetensorsFile f(p);
          for (const auto& [name, t] : f.tensors())
            if (t.dtype == DType::F32 || t.dtype == DType::F16 || t.dtype == DType::BF16) t.to_float();
        },
        errors);
  }
  EXPECT_GT(errors, 100);
  fs::remove_all(dir);
}

TEST(Corruption, NpyNeverCrashes) {
  fs::path dir = lvmflow::testing::make_temp_dir("lvmflow-fuzz");
  std::vector<float> v(30, 1.5f);
  write_npy(dir / "good.npy", {5, 6}, v.data());
  const std::string good = read_bytes(dir / "good.npy");
  int errors = 0, i = 0;
  for (const auto& s : damaged_variants(good, 128, 3)) {
    const fs::path p = dir / ("d" + std::to_string(i++) + ".npy");
    write_bytes(p, s);
    expect_parses_or_lvmflow_error([&] { read_npy(p); }, errors);
  }
  EXPECT_GT(errors, 100);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lvmflow

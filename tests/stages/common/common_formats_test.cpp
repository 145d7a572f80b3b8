// Round trips and Python interop for stages/common: .npy (NpyWriter, read_npy, write_npy) and
// safetensors (SafetensorsFile, write_safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/common/safetensors.hpp"
#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

// Same formula as tools/fixtures/common_interop.py.
std::vector<float> pattern(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 97) * 0.25f - 7.5f;
  return v;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}

// Expects `fn` to throw lvmflow::Error whose message names `path` and contains `needle`.
template <class Fn>
void expect_error_naming(Fn fn, const fs::path& path, const std::string& needle) {
  try {
    fn();
    FAIL() << "expected lvmflow::Error for " << path;
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

class CommonFormats : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = lvmflow::testing::make_temp_dir("lvmflow-common"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CommonFormats, NpyStreamingWriterRoundTrip) {
  auto values = pattern(7 * 4);
  {
    NpyWriter w(dir_ / "a.npy", 4);
    w.append(values.data(), 2);
    w.append(values.data() + 8, 0);
    w.append(values.data() + 8, 5);
    w.close();
  }
  NpyArray a = read_npy(dir_ / "a.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{7, 4}));
  EXPECT_EQ(a.data, values);
}

TEST_F(CommonFormats, NpyWriterClosesInDestructor) {
  auto values = pattern(6);
  { NpyWriter(dir_ / "d.npy", 3).append(values.data(), 2); }
  EXPECT_EQ(read_npy(dir_ / "d.npy").shape, (std::vector<std::int64_t>{2, 3}));
}

TEST_F(CommonFormats, NpyWriteOnceRoundTripAnyRank) {
  auto values = pattern(24);
  write_npy(dir_ / "b.npy", {2, 3, 4}, values.data());
  NpyArray b = read_npy(dir_ / "b.npy");
  EXPECT_EQ(b.shape, (std::vector<std::int64_t>{2, 3, 4}));
  EXPECT_EQ(b.data, values);
  write_npy(dir_ / "c.npy", {5}, values.data());
  EXPECT_EQ(read_npy(dir_ / "c.npy").shape, (std::vector<std::int64_t>{5}));
  // numpy aligns the data start to 64 bytes; we do too.
  EXPECT_EQ((read_bytes(dir_ / "b.npy").size() - 24 * 4) % 64, 0u);
}

TEST_F(CommonFormats, NpyTruncatedOrForeignFilesFailNamingTheFile) {
  auto values = pattern(12);
  write_npy(dir_ / "t.npy", {3, 4}, values.data());
  std::string bytes = read_bytes(dir_ / "t.npy");
  write_bytes(dir_ / "short_data.npy", bytes.substr(0, bytes.size() - 5));
  expect_error_naming([&] { read_npy(dir_ / "short_data.npy"); }, dir_ / "short_data.npy", "truncated");
  write_bytes(dir_ / "short_header.npy", bytes.substr(0, 30));
  expect_error_naming([&] { read_npy(dir_ / "short_header.npy"); }, dir_ / "short_header.npy", "truncated");
  write_bytes(dir_ / "magic.npy", "PK\x03\x04 not numpy at all");
  expect_error_naming([&] { read_npy(dir_ / "magic.npy"); }, dir_ / "magic.npy", "magic");
  std::string bad_dict = bytes;
  bad_dict.replace(bad_dict.find("'shape'"), 7, "'shapX'");
  write_bytes(dir_ / "dict.npy", bad_dict);
  expect_error_naming([&] { read_npy(dir_ / "dict.npy"); }, dir_ / "dict.npy", "header");
  expect_error_naming([&] { read_npy(dir_ / "absent.npy"); }, dir_ / "absent.npy", "cannot open");
}

TEST_F(CommonFormats, SafetensorsRoundTripAllDtypes) {
  auto f = pattern(6);
  std::vector<std::uint16_t> bf16 = {0x3F80, 0xC000, 0x4049, 0x0000};  // 1, -2, 3.140625, 0
  std::vector<std::uint16_t> f16 = {0x3C00, 0xC000, 0x7BFF, 0x0001};   // 1, -2, 65504, 2^-24
  std::vector<std::int64_t> ids = {7, -1, 3};
  write_safetensors(dir_ / "m.safetensors",
                    {{"w", DType::F32, {2, 3}, f.data(), 24},
                     {"h", DType::F16, {4}, f16.data(), 8},
                     {"b", DType::BF16, {2, 2}, bf16.data(), 8},
                     {"ids", DType::I64, {3}, ids.data(), 24},
                     {"empty", DType::F32, {0, 5}, nullptr, 0}},
                    {{"producer", "lvmflow"}});
  SafetensorsFile file(dir_ / "m.safetensors");
  EXPECT_EQ(file.tensors().size(), 5u);
  EXPECT_EQ(file.metadata().at("producer"), "lvmflow");
  EXPECT_EQ(file.tensor("w", {2, 3}).to_float(), f);
  EXPECT_EQ(file.tensor("b").to_float(), (std::vector<float>{1.f, -2.f, 3.140625f, 0.f}));
  EXPECT_EQ(file.tensor("h").to_float(), (std::vector<float>{1.f, -2.f, 65504.f, std::ldexp(1.f, -24)}));
  const TensorView& t = file.tensor("ids");
  ASSERT_EQ(t.dtype, DType::I64);
  std::vector<std::int64_t> back(3);
  std::memcpy(back.data(), t.data, t.nbytes);
  EXPECT_EQ(back, ids);
  EXPECT_EQ(file.tensor("empty").numel(), 0);
  EXPECT_THROW(t.to_float(), Error);
  // The header is padded so the data buffer starts 8-byte aligned.
  std::string bytes = read_bytes(dir_ / "m.safetensors");
  std::uint64_t header_len;
  std::memcpy(&header_len, bytes.data(), 8);
  EXPECT_EQ(header_len % 8, 0u);
}

TEST_F(CommonFormats, SafetensorsShapeAndNameChecksNameTheTensor) {
  auto f = pattern(6);
  write_safetensors(dir_ / "m.safetensors", {{"encoder.weight", DType::F32, {2, 3}, f.data(), 24}});
  SafetensorsFile file(dir_ / "m.safetensors");
  expect_error_naming([&] { file.tensor("encoder.weight", {3, 2}); }, dir_ / "m.safetensors",
                      "'encoder.weight' has shape [2, 3], expected [3, 2]");
  expect_error_naming([&] { file.tensor("decoder.weight"); }, dir_ / "m.safetensors",
                      "'decoder.weight' is missing");
  EXPECT_THROW(write_safetensors(dir_ / "x.safetensors", {{"w", DType::F32, {2, 2}, f.data(), 24}}),
               Error);
}

TEST_F(CommonFormats, SafetensorsCorruptFilesFailNamingTheFile) {
  auto f = pattern(6);
  write_safetensors(dir_ / "good.safetensors", {{"w", DType::F32, {2, 3}, f.data(), 24}});
  const std::string good = read_bytes(dir_ / "good.safetensors");
  std::uint64_t header_len;
  std::memcpy(&header_len, good.data(), 8);

  struct Case {
    std::string name, bytes, needle;
  };
  std::string huge_len = good;
  std::uint64_t big = 1ull << 40;
  std::memcpy(huge_len.data(), &big, 8);
  std::string bad_json = good;
  bad_json[8] = '[';
  std::string bad_offsets = good;
  auto pos = bad_offsets.find("[0,24]");
  ASSERT_NE(pos, std::string::npos) << good.substr(8, header_len);
  bad_offsets.replace(pos, 6, "[0,99]");
  std::string bad_dtype = good;
  bad_dtype.replace(bad_dtype.find("\"F32\""), 5, "\"F99\"");
  std::string wrong_size = good;
  wrong_size.replace(wrong_size.find("[2,3]"), 5, "[2,4]");
  const Case cases[] = {
      {"tiny.safetensors", good.substr(0, 5), "truncated"},
      {"cut_header.safetensors", good.substr(0, 8 + header_len / 2), "truncated"},
      {"cut_data.safetensors", good.substr(0, good.size() - 4), "outside"},
      {"huge.safetensors", huge_len, "implausible"},
      {"json.safetensors", bad_json, "invalid JSON"},
      {"offsets.safetensors", bad_offsets, "outside"},
      {"dtype.safetensors", bad_dtype, "unsupported dtype F99"},
      {"size.safetensors", wrong_size, "needs 32"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    write_bytes(dir_ / c.name, c.bytes);
    expect_error_naming([&] { SafetensorsFile file(dir_ / c.name); }, dir_ / c.name, c.needle);
  }
  expect_error_naming([&] { SafetensorsFile file(dir_ / "absent.safetensors"); },
                      dir_ / "absent.safetensors", "cannot open");
}

// Files written by numpy (and a spec-following Python safetensors writer) open here, and
// files we write open in numpy.
TEST_F(CommonFormats, PythonInterop) {
  if (!lvmflow::testing::python_has("numpy")) GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  ASSERT_EQ(lvmflow::testing::run_fixture_script("common_interop.py", "write " + dir_.string()), 0);

  NpyArray a = read_npy(dir_ / "py_f32.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{3, 5}));
  EXPECT_EQ(a.data, pattern(15));
  NpyArray b = read_npy(dir_ / "py_f64.npy");
  EXPECT_EQ(b.shape, (std::vector<std::int64_t>{4, 2, 3}));
  EXPECT_EQ(b.data, pattern(24));
  expect_error_naming([&] { read_npy(dir_ / "py_i32.npy"); }, dir_ / "py_i32.npy", "<i4");
  expect_error_naming([&] { read_npy(dir_ / "py_fortran.npy"); }, dir_ / "py_fortran.npy", "Fortran");

  SafetensorsFile st(dir_ / "py.safetensors");
  EXPECT_EQ(st.metadata().at("note"), "written by numpy");
  EXPECT_EQ(st.tensor("a.f32", {2, 3, 4}).to_float(), pattern(24));
  EXPECT_EQ(st.tensor("b.f16", {10}).to_float(), pattern(10));       // exactly representable
  EXPECT_EQ(st.tensor("c.bf16", {2, 4}).to_float(), pattern(8));     // exactly representable
  EXPECT_EQ(st.tensor("e.scalar", {}).to_float(), std::vector<float>{3.5f});
  EXPECT_EQ(st.tensor("d.i64", {5}).dtype, DType::I64);

  auto values = pattern(28);
  {
    NpyWriter w(dir_ / "cpp_stream.npy", 4);
    w.append(values.data(), 3);
    w.append(values.data() + 12, 4);
    w.close();
  }
  { NpyWriter(dir_ / "cpp_empty.npy", 768).close(); }
  write_npy(dir_ / "cpp_once.npy", {2, 3, 2}, values.data());
  std::vector<std::int64_t> ids = {7, -1, 3};
  write_safetensors(dir_ / "cpp.safetensors",
                    {{"w", DType::F32, {2, 3}, values.data(), 24},
                     {"z", DType::F32, {0}, nullptr, 0},
                     {"ids", DType::I64, {3}, ids.data(), 24}},
                    {{"producer", "lvmflow"}});
  EXPECT_EQ(lvmflow::testing::run_fixture_script("common_interop.py", "check " + dir_.string()), 0);
}

}  // namespace
}  // namespace lvmflow

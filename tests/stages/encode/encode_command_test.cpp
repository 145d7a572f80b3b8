#include <gtest/gtest.h>

#include <fstream>

#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/encode_command.hpp"
#include "stages/encode/text_encoder.hpp"
#include "tests/stages/encode/tiny_models.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

int run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "encode");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  return run_encode_command(static_cast<int>(argv.size()), argv.data());
}

class EncodeCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = lvmflow::testing::make_temp_dir("lvmflow-encode-cli");
    std::ofstream(dir_ / "in.txt") << "first line\nsecond line\r\n\nfourth, after an empty one\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EncodeCommand, BuiltinWithoutModelSaysSo) {
  ::testing::internal::CaptureStderr();
  int rc = run_cli({(dir_ / "in.txt").string(), "-o", (dir_ / "out.npy").string()});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(rc, 0) << err;
  EXPECT_NE(err.find("NOT GTR-T5"), std::string::npos) << err;
  NpyArray a = read_npy(dir_ / "out.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{4, 768}));
  Json rec = read_json_file((dir_ / "out.encoder.json").string());
  EXPECT_FALSE(rec.at("is_gtr_t5").as_bool());
  // Row i = line i ("\r\n" endings are not part of the text).
  auto enc = make_text_encoder({});
  std::vector<float> second(768);
  enc->encode({"second line"}, second.data());
  EXPECT_TRUE(std::equal(second.begin(), second.end(), a.data.begin() + 768));
}

TEST_F(EncodeCommand, ModelFolderAndPooling) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const fs::path model = lvmflow::testing::tiny_models() / "gelu_bin";
  ::testing::internal::CaptureStderr();
  int rc = run_cli({"--model", model.string(), "--pooling", "vec2text", "--max-length", "8",
                    (dir_ / "in.txt").string(), "-o", (dir_ / "v.npy").string()});
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(rc, 0) << err;
  EXPECT_EQ(err.find("NOT GTR-T5"), std::string::npos) << err;
  NpyArray a = read_npy(dir_ / "v.npy");
  EXPECT_EQ(a.shape, (std::vector<std::int64_t>{4, 32}));
  EncoderOptions o;
  o.model_dir = model;
  o.pooling = Pooling::Vec2Text;
  o.max_length = 8;
  std::vector<float> fourth(32);
  make_text_encoder(o)->encode({"fourth, after an empty one"}, fourth.data());
  EXPECT_GT(lvmflow::testing::cosine(fourth.data(), a.data.data() + 3 * 32, 32), 0.999999);
  Json rec = read_json_file((dir_ / "v.encoder.json").string());
  EXPECT_EQ(rec.at("pooling").as_string(), "vec2text");
  EXPECT_EQ(rec.at("max_length").as_int(), 8);
}

TEST_F(EncodeCommand, UsageErrorsAndHelp) {
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(run_cli({"--help"}), 0);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("--pooling"), std::string::npos);
  ::testing::internal::CaptureStderr();
  EXPECT_NE(run_cli({(dir_ / "in.txt").string()}), 0);                                    // no -o
  EXPECT_NE(run_cli({"--pooling", "max", (dir_ / "in.txt").string(), "-o", "x.npy"}), 0);  // bad pooling
  EXPECT_NE(run_cli({(dir_ / "missing.txt").string(), "-o", (dir_ / "x.npy").string()}), 0);
  EXPECT_NE(run_cli({"--model", (dir_ / "nope").string(), (dir_ / "in.txt").string(), "-o", (dir_ / "x.npy").string()}), 0);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("missing.txt"), std::string::npos) << err;
  EXPECT_NE(err.find("nope"), std::string::npos) << err;
}

}  // namespace
}  // namespace lvmflow

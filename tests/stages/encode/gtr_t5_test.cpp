// The libtorch T5 encoder against the independent Python reference (tools/fixtures/
// t5_reference.py, float64) on random tiny models of both FFN kinds, both poolings, with and
// without truncation; plus loader errors for damaged model folders.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/t5_tokenizer.hpp"
#include "stages/encode/text_encoder.hpp"
#include "tests/stages/encode/tiny_models.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using lvmflow::testing::cosine;
using lvmflow::testing::read_lines;
using lvmflow::testing::tiny_models;

struct Variant {
  const char* folder;
  Pooling pooling;
  std::int64_t max_length;
};

class GtrT5Reference : public ::testing::TestWithParam<Variant> {};

TEST_P(GtrT5Reference, MatchesPythonReferencePerVector) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const Variant v = GetParam();
  const fs::path model = tiny_models() / v.folder;
  const auto texts = read_lines(tiny_models() / "texts.txt");
  EncoderOptions o;
  o.model_dir = model;
  o.pooling = v.pooling;
  o.max_length = v.max_length;
  o.max_batch_tokens = 100;  // several length buckets, some with padding
  auto enc = make_text_encoder(o);
  EXPECT_FALSE(enc->is_builtin());
  EXPECT_EQ(enc->max_length(), v.max_length);

  NpyArray ref = read_npy(model / ("ref_" + std::string(to_string(v.pooling)) + "_" +
                                   std::to_string(v.max_length) + ".npy"));
  ASSERT_EQ(ref.shape.size(), 2u);
  ASSERT_EQ(static_cast<std::size_t>(ref.shape[0]), texts.size());
  ASSERT_EQ(static_cast<std::size_t>(ref.shape[1]), enc->dim());
  EXPECT_EQ(enc->dim(), v.pooling == Pooling::Vec2Text ? 32u : 24u);  // d_model vs Dense out

  std::vector<float> got(texts.size() * enc->dim());
  enc->encode(texts, got.data());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const float* g = got.data() + i * enc->dim();
    const float* r = ref.data.data() + i * enc->dim();
    EXPECT_GT(cosine(g, r, enc->dim()), 0.99999) << "row " << i << " '" << texts[i] << "'";
    double max_rel = 0, ref_norm = 0;
    for (std::size_t j = 0; j < enc->dim(); ++j) ref_norm = std::max(ref_norm, std::abs(double(r[j])));
    for (std::size_t j = 0; j < enc->dim(); ++j) max_rel = std::max(max_rel, std::abs(double(g[j]) - r[j]) / ref_norm);
    EXPECT_LT(max_rel, 1e-4) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, GtrT5Reference,
    ::testing::Values(Variant{"relu_st", Pooling::SentenceTransformers, 64},
                      Variant{"relu_st", Pooling::Vec2Text, 64},
                      Variant{"relu_st", Pooling::SentenceTransformers, 12},
                      Variant{"gelu_bin", Pooling::SentenceTransformers, 64},
                      Variant{"gelu_bin", Pooling::Vec2Text, 64},
                      Variant{"gelu_bin", Pooling::Vec2Text, 12}),
    [](const auto& info) {
      std::string n = std::string(info.param.folder) + "_" +
                      (info.param.pooling == Pooling::Vec2Text ? "vec2text" : "st") + "_" +
                      std::to_string(info.param.max_length);
      return n;
    });

TEST(GtrT5, TokenizerFollowsT5Conventions) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const auto texts = read_lines(tiny_models() / "texts.txt");
  T5Tokenizer tok(tiny_models() / "relu_st" / "spiece.model");
  for (std::int64_t max_length : {64, 12}) {
    const auto expected = read_lines(tiny_models() / "relu_st" / ("ref_tokens_" + std::to_string(max_length) + ".txt"));
    ASSERT_EQ(expected.size(), texts.size());
    for (std::size_t i = 0; i < texts.size(); ++i) {
      auto ids = tok.encode(texts[i], max_length);
      std::ostringstream s;
      for (std::size_t j = 0; j < ids.size(); ++j) s << (j ? " " : "") << ids[j];
      EXPECT_EQ(s.str(), expected[i]) << "text " << i;
      EXPECT_EQ(ids.back(), T5Tokenizer::kEosId);
      EXPECT_LE(static_cast<std::int64_t>(ids.size()), max_length);
    }
  }
  EXPECT_EQ(tok.encode("", 12), std::vector<std::int64_t>{1});
}

TEST(GtrT5, BatchingDoesNotChangeVectors) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const auto texts = read_lines(tiny_models() / "texts.txt");
  EncoderOptions o;
  o.model_dir = tiny_models() / "gelu_bin";
  auto all_at_once = make_text_encoder(o);
  o.max_batch_tokens = 1;  // one text per forward pass, no padding at all
  auto one_by_one = make_text_encoder(o);
  EXPECT_EQ(all_at_once->fingerprint(), one_by_one->fingerprint());  // batching is not output
  const std::size_t dim = all_at_once->dim();
  std::vector<float> a(texts.size() * dim), b(texts.size() * dim);
  all_at_once->encode(texts, a.data());
  one_by_one->encode(texts, b.data());
  for (std::size_t i = 0; i < texts.size(); ++i)
    EXPECT_GT(cosine(a.data() + i * dim, b.data() + i * dim, dim), 0.999999) << "row " << i;
  EXPECT_EQ(all_at_once->max_length(), 64);  // from sentence_bert_config.json
}

TEST(GtrT5, FingerprintCoversPoolingAndMaxLength) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  EncoderOptions o;
  o.model_dir = tiny_models() / "relu_st";
  const std::string base = make_text_encoder(o)->fingerprint();
  o.pooling = Pooling::Vec2Text;
  EXPECT_NE(make_text_encoder(o)->fingerprint(), base);
  o.pooling = Pooling::SentenceTransformers;
  o.max_length = 20;
  EXPECT_NE(make_text_encoder(o)->fingerprint(), base);
  o.max_length = 0;
  o.model_dir = tiny_models() / "gelu_bin";
  EXPECT_NE(make_text_encoder(o)->fingerprint(), base);
}

// The reduced-precision options trade a little accuracy for speed; they must stay close.
TEST(GtrT5, ReducedPrecisionStaysCloseToReference) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const auto texts = read_lines(tiny_models() / "texts.txt");
  for (const char* folder : {"relu_st", "gelu_bin"}) {
    NpyArray ref = read_npy(tiny_models() / folder / "ref_sentence-transformers_64.npy");
    for (ComputeDType dtype : {ComputeDType::BFloat16, ComputeDType::Int8Dynamic}) {
      SCOPED_TRACE(std::string(folder) + " " + to_string(dtype));
      EncoderOptions o;
      o.model_dir = tiny_models() / folder;
      o.dtype = dtype;
      auto enc = make_text_encoder(o);
      std::vector<float> got(texts.size() * enc->dim());
      enc->encode(texts, got.data());
      for (std::size_t i = 0; i < texts.size(); ++i)
        EXPECT_GT(cosine(got.data() + i * enc->dim(), ref.data.data() + i * enc->dim(), enc->dim()), 0.99) << i;
    }
  }
}

// Expects make_text_encoder to fail with an lvmflow::Error mentioning every needle.
void expect_load_error(const EncoderOptions& o, const std::vector<std::string>& needles) {
  try {
    make_text_encoder(o);
    ADD_FAILURE() << "expected an error loading " << o.model_dir;
  } catch (const Error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

void rewrite_json(const fs::path& p, const std::string& key, Json value) {
  Json j = read_json_file(p.string());
  j[key] = std::move(value);
  write_json_file(p.string(), j);
}

TEST(GtrT5, DamagedFoldersFailNamingTheFile) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  EncoderOptions o;
  o.model_dir = tiny_models() / "no-such-model";
  expect_load_error(o, {"no-such-model", "does not exist"});

  const fs::path st = lvmflow::testing::copy_model(tiny_models() / "relu_st", "lvmflow-damaged");
  o.model_dir = st;
  fs::remove(st / "2_Dense" / "model.safetensors");
  expect_load_error(o, {(st / "2_Dense" / "model.safetensors").string(), "pytorch_model.bin"});
  o.pooling = Pooling::Vec2Text;  // vec2text pooling does not need the Dense layer
  EXPECT_NO_THROW(make_text_encoder(o));
  o.pooling = Pooling::SentenceTransformers;

  fs::remove(st / "modules.json");
  expect_load_error(o, {(st / "modules.json").string(), "missing"});
  fs::remove(st / "spiece.model");
  expect_load_error(o, {(st / "spiece.model").string()});

  // A config that disagrees with the weights: the error names the tensor.
  const fs::path st2 = lvmflow::testing::copy_model(tiny_models() / "relu_st", "lvmflow-damaged");
  o.model_dir = st2;
  rewrite_json(st2 / "config.json", "d_ff", Json(65));
  expect_load_error(o, {"encoder.block.0.layer.1.DenseReluDense.wi.weight", "[64, 32]", "[65, 32]"});
  rewrite_json(st2 / "config.json", "d_ff", Json(64));
  rewrite_json(st2 / "config.json", "num_layers", Json(3));
  expect_load_error(o, {"encoder.block.2.layer.0.layer_norm.weight", "missing"});
  rewrite_json(st2 / "config.json", "num_layers", Json(2));
  rewrite_json(st2 / "config.json", "feed_forward_proj", Json("gated-silu"));
  expect_load_error(o, {"config.json", "gated-silu"});
  rewrite_json(st2 / "config.json", "feed_forward_proj", Json("gated-gelu"));
  expect_load_error(o, {"wi_0.weight", "missing"});
  rewrite_json(st2 / "config.json", "feed_forward_proj", Json("relu"));
  // Truncated weights.
  {
    std::ifstream in(st2 / "model.safetensors", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(st2 / "model.safetensors", std::ios::binary | std::ios::trunc).write(bytes.data(), 1000);
  }
  expect_load_error(o, {(st2 / "model.safetensors").string()});

  // A damaged pytorch_model.bin.
  const fs::path bin = lvmflow::testing::copy_model(tiny_models() / "gelu_bin", "lvmflow-damaged");
  o.model_dir = bin;
  {
    std::ifstream in(bin / "pytorch_model.bin", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(bin / "pytorch_model.bin", std::ios::binary | std::ios::trunc).write(bytes.data(), 3000);
  }
  expect_load_error(o, {(bin / "pytorch_model.bin").string()});
  std::ofstream(bin / "pytorch_model.bin", std::ios::binary | std::ios::trunc) << "not a checkpoint";
  expect_load_error(o, {(bin / "pytorch_model.bin").string(), "zip"});
  for (const auto& d : {st, st2, bin}) fs::remove_all(d);
}

}  // namespace
}  // namespace lvmflow

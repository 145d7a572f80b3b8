#include <gtest/gtest.h>

#include <cstdlib>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/lvm/baselines.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "tests/stages/lvm/lvm_test_data.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

struct ArchExpectation {
  std::string arch;
  std::int64_t params;            // exact count of the configuration at D = 768
  std::vector<std::string> names; // a few state_dict names the PyTorch peer also has
};

TEST(LvmModels, ShapesParameterCountsAndStateDictNames) {
  const std::vector<ArchExpectation> expected = {
      {"lstm", 5120768, {"lstm.weight_ih_l0", "lstm.bias_hh_l1", "output_proj.weight"}},
      {"gru", 7095552, {"input_proj.weight", "blocks.3.gru.weight_hh_l0", "blocks.0.norm.bias", "output_proj.bias"}},
      {"transformer", 17867520,
       {"layers.0.self_attn.in_proj_weight", "layers.3.multihead_attn.out_proj.weight", "layers.1.norm3.weight",
        "layers.2.linear1.bias", "head.2.weight", "head.3.bias"}},
      {"amn", 1510912, {"key_proj.weight", "query_proj.bias", "residual_mlp.0.weight", "residual_mlp.6.bias"}},
  };
  torch::manual_seed(0);
  for (const auto& e : expected) {
    auto model = make_model(default_model_config(e.arch, 768, 5));
    model->eval();
    EXPECT_EQ(model->parameter_count(), e.params) << e.arch;
    auto state = model_state(*model);
    for (const auto& name : e.names) EXPECT_TRUE(state.count(name)) << e.arch << " lacks " << name;
    torch::NoGradGuard no_grad;
    auto out = model->forward(torch::randn({3, 5, 768}));
    ASSERT_EQ(out.sizes(), (std::vector<std::int64_t>{3, 768})) << e.arch;
    EXPECT_TRUE(torch::allclose(out.norm(2, -1), torch::ones({3}), 1e-5, 1e-5)) << e.arch << " output not unit-norm";
  }
  EXPECT_THROW(default_model_config("mamba", 768, 5), Error);
}

TEST(LvmModels, UntrainedAmnIsTheLinearAverage) {
  WindowData data = testdata::synthetic_windows();
  auto model = make_model(default_model_config("amn", std::int64_t(data.dim), std::int64_t(data.context)));
  model->eval();
  BaselinePredictor linear("linear_average", data);
  torch::NoGradGuard no_grad;
  auto ctx = torch::from_blob(const_cast<float*>(data.context_of(0)),
                              {1, std::int64_t(data.context), std::int64_t(data.dim)}).clone();
  auto pred = model->forward(ctx);
  std::vector<float> expected(data.dim);
  linear.predict(data, 0, expected.data());
  EXPECT_TRUE(torch::allclose(pred[0], torch::from_blob(expected.data(), {std::int64_t(data.dim)}), 1e-5, 1e-6));
}

TEST(LvmCheckpoint, RoundTripAndStrictShapeCheck) {
  auto dir = testing::make_temp_dir("lvm-ckpt");
  torch::manual_seed(2);
  auto model = make_model(default_model_config("gru", 24, 3, 16, 2));
  model->eval();
  Json info;
  info["note"] = "round trip";
  save_checkpoint(*model, info, dir);
  LoadedCheckpoint loaded = load_checkpoint(dir);
  EXPECT_EQ(loaded.info.at("note").as_string(), "round trip");
  EXPECT_EQ(loaded.info.at("params").as_int(), model->parameter_count());
  torch::NoGradGuard no_grad;
  auto x = torch::randn({4, 3, 24});
  EXPECT_TRUE(torch::equal(model->forward(x), loaded.model->forward(x)));

  // A config that disagrees with the weights names the tensor.
  auto wrong = make_model(default_model_config("gru", 24, 3, 8, 2));
  try {
    load_model_state(*wrong, model_state(*model), "ckpt");
    FAIL() << "shape mismatch accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_checkpoint(dir / "nowhere"), Error);
  std::filesystem::remove_all(dir);
}

// The PyTorch peer (tools/bench/lvm/lvm_models.py) builds the same modules; a C++ checkpoint
// must load there with strict=True and give the same outputs. For the transformer this also
// checks the C++ shortcut of computing only the last position in the final layer against
// torch.nn.TransformerDecoderLayer computing all of them.
TEST(LvmCheckpoint, LoadsIntoThePythonPeerWithSameOutputs) {
  const char* python = "/usr/bin/python3";
  if (!std::filesystem::exists(python)) GTEST_SKIP() << "no /usr/bin/python3";
  torch::manual_seed(3);
  auto root = testing::make_temp_dir("lvm-py");
  std::string cmd = std::string(python) + " " + LVMFLOW_SOURCE_DIR "/tools/bench/lvm/lvm_models.py check --tolerance 2e-5";
  for (const std::string arch : {"lstm", "gru", "transformer", "amn"}) {
    auto dir = root / arch;
    auto model = make_model(default_model_config(arch, 48, 4, 32, 2));
    // Trained-looking weights: perturb everything so the AMN's zero layer is not zero.
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
    }
    model->eval();
    save_checkpoint(*model, Json(Json::Object{}), dir);
    auto x = torch::randn({5, 4, 48});
    torch::Tensor y;
    {
      torch::NoGradGuard no_grad;
      y = model->forward(x).contiguous();
    }
    write_npy(dir / "inputs.npy", {5, 4, 48}, x.data_ptr<float>());
    write_npy(dir / "expected.npy", {5, 48}, y.data_ptr<float>());
    cmd += " " + dir.string();
  }
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::filesystem::remove_all(root);
}

TEST(LvmBaselines, Math) {
  WindowData data;
  data.context = 2;
  data.dim = 2;
  data.ids = {"1:2", "2:2"};
  data.article_ids = {1, 2};
  data.target_positions = {2, 2};
  data.splits = {0, 1};
  // window 0: context (1,0), (0,1) -> target (1,1); window 1: context (3,0), (0,4) -> target (0,1)
  data.vectors = VectorRows::in_memory({1, 0, 0, 1, 1, 1, 3, 0, 0, 4, 0, 1}, 2);
  data.target_rows = {2, 5};
  std::vector<float> out(2);
  BaselinePredictor("linear_average", data).predict(data, 1, out.data());
  EXPECT_NEAR(out[0], 0.6, 1e-6);   // mean (1.5, 2) normalised
  EXPECT_NEAR(out[1], 0.8, 1e-6);
  BaselinePredictor("persistence", data).predict(data, 1, out.data());
  EXPECT_NEAR(out[0], 0.0, 1e-6);
  EXPECT_NEAR(out[1], 1.0, 1e-6);
  // Corpus mean uses training targets only: (1,1) normalised, whatever the validation holds.
  BaselinePredictor corpus("corpus_mean", data);
  corpus.predict(data, 1, out.data());
  EXPECT_NEAR(out[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(out[1], std::sqrt(0.5), 1e-6);
  BaselinePredictor random("random", data, 9);
  std::vector<float> again(2);
  random.predict(data, 0, out.data());
  random.predict(data, 0, again.data());
  EXPECT_EQ(out, again);
  EXPECT_NEAR(std::hypot(out[0], out[1]), 1.0, 1e-6);
  EXPECT_THROW(BaselinePredictor("oracle", data), Error);

  PredictionScore s = score_baseline(BaselinePredictor("persistence", data), data, {1});
  EXPECT_NEAR(s.cosine, 1.0, 1e-9);
  EXPECT_NEAR(s.mse, 0.0, 1e-12);
  float opposite[4] = {1, 0, -1, 0};
  EXPECT_NEAR(mean_pairwise_cosine(opposite, 2, 2), -1.0, 1e-9);
  float three[6] = {1, 0, 1, 0, 0, 1};
  EXPECT_NEAR(mean_pairwise_cosine(three, 3, 2), 1.0 / 3.0, 1e-9);
  EXPECT_NEAR(mean_squared_error(opposite, opposite + 2, 2), 2.0, 1e-9);
}

}  // namespace
}  // namespace lvmflow

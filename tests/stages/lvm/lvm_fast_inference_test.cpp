#include <gtest/gtest.h>

#include <random>

#include "pipeline/error.hpp"
#include "stages/lvm/baselines.hpp"
#include "stages/lvm/fast_inference.hpp"
#include "stages/lvm/trainer.hpp"
#include "tests/stages/lvm/lvm_test_data.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

// Odd sizes (not multiples of the 16-wide panels) so that padding and remainders are exercised.
TEST(PackedLinear, MatchesThePlainProductInEveryDtype) {
  const std::size_t out = 37, in = 23, rows = 6;
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> w(out * in), bias(out), x(rows * in);
  for (auto* v : {&w, &bias, &x})
    for (auto& f : *v) f = normal(rng);
  std::vector<float> expected(rows * out);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t o = 0; o < out; ++o) {
      double s = bias[o];
      for (std::size_t k = 0; k < in; ++k) s += double(w[o * in + k]) * x[r * in + k];
      expected[r * out + o] = float(s);
    }
  // Weight rounding: bfloat16 keeps 8 significant bits, int8 ~7 bits of the row's largest.
  for (auto [dtype, tolerance] : {std::pair{LvmDType::Float32, 1e-5}, std::pair{LvmDType::BFloat16, 0.1},
                                  std::pair{LvmDType::Int8, 0.15}}) {
    PackedLinear op(w.data(), bias.data(), out, in, dtype);
    std::vector<float> y(rows * out, 0.0f);
    op.apply(x.data(), rows, y.data());
    for (std::size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], expected[i], tolerance) << to_string(dtype) << " " << i;
    // accumulate + strides: every other row of x into every other row of y.
    std::vector<float> twice(y);
    op.apply(x.data(), 2 * in, rows / 2, twice.data(), 2 * out, /*accumulate=*/true);
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t o = 0; o < out; ++o)
        ASSERT_FLOAT_EQ(twice[r * out + o], (r % 2 == 0 ? 2.0f : 1.0f) * y[r * out + o]) << to_string(dtype);
  }
  // int8: 48 padded rows x 24 inputs (groups of 4)
  EXPECT_EQ(PackedLinear(w.data(), nullptr, out, in, LvmDType::Int8).weight_bytes(), 48u * 24u);
}

TEST(PackedLinear, DtypeNames) {
  for (auto d : {LvmDType::Float32, LvmDType::BFloat16, LvmDType::Int8}) EXPECT_EQ(parse_lvm_dtype(to_string(d), "x"), d);
  EXPECT_THROW(parse_lvm_dtype("float16", "param dtype"), Error);
}

// A small model of `arch` with every parameter random (also the LayerNorms and the AMN's
// zero-initialised last layer, which would otherwise hide mistakes).
std::shared_ptr<LvmModel> random_model(const std::string& arch) {
  ModelConfig c = default_model_config(arch, 40, 4, /*hidden=*/48, /*layers=*/2);
  if (arch == "transformer") c.heads = 4, c.ff = 72;
  if (arch == "amn") c.ff = 36;
  torch::manual_seed(7);
  auto model = make_model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.copy_(torch::randn_like(p) * 0.3);
  model->eval();
  return model;
}

TEST(FastLvm, Float32MatchesTheTorchForwardForEveryArchitecture) {
  for (const std::string arch : {"amn", "lstm", "gru", "transformer"}) {
    auto model = random_model(arch);
    auto fast = make_fast_lvm(*model, LvmDType::Float32);
    for (std::int64_t batch : {1, 5, 40}) {   // 40 x 4 rows: the GEMM path
      for (std::int64_t steps : {4, 1}) {
        auto x = torch::randn({batch, steps, 40});
        c10::InferenceMode guard;
        auto expected = model->forward(x);
        auto got = fast->forward(x);
        ASSERT_EQ(got.sizes(), expected.sizes()) << arch;
        EXPECT_LT((got - expected).abs().max().item<float>(), 1e-5) << arch << " batch " << batch << " steps " << steps;
      }
    }
  }
}

TEST(FastLvm, ReducedPrecisionsStayWithinTheValCosineBound) {
  WindowData data = testdata::synthetic_windows(64);
  const auto val_rows = data.rows_in_split(1);
  ASSERT_FALSE(val_rows.empty());
  torch::Tensor contexts, targets;
  gather_windows(data, val_rows, 0, val_rows.size(), &contexts, &targets);
  for (const std::string arch : {"amn", "lstm", "gru", "transformer"}) {
    TrainSettings s;
    s.arch = arch, s.hidden = 64, s.layers = 2, s.epochs = 3, s.batch_size = 16, s.lr = 3e-3, s.seed = 5;
    testing::TestContext ctx("lvm.train");
    TrainResult trained = train_model(data, s, {}, ctx);
    trained.model->eval();
    auto val_cosine = [&](LvmDType dtype) {
      c10::InferenceMode guard;
      auto pred = make_fast_lvm(*trained.model, dtype)->forward(contexts);
      return torch::cosine_similarity(pred, targets, 1).mean().item<double>();
    };
    const double reference = val_cosine(LvmDType::Float32);
    {
      c10::InferenceMode guard;
      auto torch_pred = trained.model->forward(contexts);
      EXPECT_NEAR(torch::cosine_similarity(torch_pred, targets, 1).mean().item<double>(), reference, 1e-6) << arch;
    }
    for (auto dtype : {LvmDType::BFloat16, LvmDType::Int8}) {
      const double delta = val_cosine(dtype) - reference;
      EXPECT_LE(std::abs(delta), 0.002) << arch << " " << to_string(dtype);
      EXPECT_NE(delta, 0.0) << arch << " " << to_string(dtype) << ": the weights were not rounded";
    }
  }
}

}  // namespace
}  // namespace lvmflow

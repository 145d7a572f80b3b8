#include <gtest/gtest.h>

#include "pipeline/error.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "stages/lvm/trainer.hpp"
#include "tests/stages/lvm/lvm_test_data.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

using testdata::tiny;

bool same_weights(const LvmModel& a, const LvmModel& b) {
  auto sa = model_state(a), sb = model_state(b);
  if (sa.size() != sb.size()) return false;
  for (const auto& [name, t] : sa)
    if (!sb.count(name) || !torch::equal(t, sb.at(name))) return false;
  return true;
}

TEST(LvmTraining, LossDecreasesForEveryArchitecture) {
  WindowData data = testdata::synthetic_windows();
  for (const std::string arch : {"amn", "lstm", "gru", "transformer"}) {
    testing::TestContext ctx("lvm.train");
    TrainResult r = train_model(data, tiny(arch, 4), {}, ctx);
    ASSERT_EQ(r.history.size(), 4u) << arch;
    EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss) << arch;
    EXPECT_GE(r.best_epoch, 1) << arch;
    EXPECT_EQ(ctx.metric_value("val_cosine", arch), r.history.back().val_cosine);
    EXPECT_GT(r.train_samples_per_s, 0) << arch;
  }
}

TEST(LvmTraining, CosineAndInfoNceLossesTrainToo) {
  WindowData data = testdata::synthetic_windows();
  for (const std::string loss : {"cosine", "infonce"}) {
    testing::TestContext ctx("lvm.train");
    TrainSettings s = tiny("gru", 3);
    s.loss = loss;
    TrainResult r = train_model(data, s, {}, ctx);
    EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss) << loss;
  }
}

TEST(LvmTraining, SameSeedSameWeightsOtherSeedOtherWeights) {
  WindowData data = testdata::synthetic_windows();
  testing::TestContext ctx("lvm.train");
  // lstm with 2 layers has dropout between them: the seed must fix the masks too.
  TrainSettings s = tiny("lstm", 2);
  s.layers = 2;
  TrainResult a = train_model(data, s, {}, ctx);
  TrainResult b = train_model(data, s, {}, ctx);
  EXPECT_TRUE(same_weights(*a.model, *b.model));
  EXPECT_EQ(a.history.back().train_loss, b.history.back().train_loss);
  s.seed = 12;
  TrainResult c = train_model(data, s, {}, ctx);
  EXPECT_FALSE(same_weights(*a.model, *c.model));
}

TEST(LvmTraining, ResumeContinuesAfterTheLastFinishedEpochExactly) {
  WindowData data = testdata::synthetic_windows();
  auto root = testing::make_temp_dir("lvm-resume");
  testing::TestContext ctx("lvm.train");
  TrainSettings s = tiny("transformer", 4);   // dropout: the RNG state must survive too
  TrainResult straight = train_model(data, s, root / "a", ctx);

  // Interrupted: cancel during epoch 3, after two finished epochs.
  struct CancelAfter : testing::TestContext {
    using TestContext::TestContext;
    std::size_t epochs_seen = 0;
    void metric(const std::string& name, double value, std::int64_t step, const std::string& label) override {
      TestContext::metric(name, value, step, label);
      if (name == "lr" && ++epochs_seen == 2) cancel_ = true;
    }
  } interrupted("lvm.train");
  EXPECT_THROW(train_model(data, s, root / "b", interrupted), Error);
  ASSERT_TRUE(std::filesystem::exists(root / "b" / "state.pt"));

  testing::TestContext again("lvm.train");
  TrainResult resumed = train_model(data, s, root / "b", again);
  EXPECT_EQ(resumed.resumed_from_epoch, 2);
  ASSERT_EQ(resumed.history.size(), 4u);
  EXPECT_TRUE(same_weights(*straight.model, *resumed.model));
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(straight.history[i].val_cosine, resumed.history[i].val_cosine) << i;
  EXPECT_EQ(straight.best_epoch, resumed.best_epoch);
  std::filesystem::remove_all(root);
}

TEST(LvmTraining, PlateauSchedulerHalvesAfterPatience) {
  PlateauScheduler p;
  p.patience = 2;
  p.factor = 0.5;
  double lr = 1.0;
  lr = p.step(1.0, lr);   // best
  lr = p.step(1.0, lr);   // bad 1
  lr = p.step(1.0, lr);   // bad 2
  EXPECT_EQ(lr, 1.0);
  lr = p.step(1.0, lr);   // bad 3 > patience
  EXPECT_EQ(lr, 0.5);
  lr = p.step(0.5, lr);
  EXPECT_EQ(lr, 0.5);
}

TEST(LvmTraining, NoTrainingWindowsIsAClearError) {
  WindowData data = testdata::synthetic_windows();
  for (auto& s : data.splits) s = 1;
  testing::TestContext ctx("lvm.train");
  try {
    train_model(data, tiny("amn", 1), {}, ctx);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no training windows"), std::string::npos);
  }
}

}  // namespace
}  // namespace lvmflow

// Data-parallel lvm.train over c10d Gloo: two ranks on 127.0.0.1 (threads of this test).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "pipeline/error.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "pipeline/plan.hpp"
#include "pipeline/store.hpp"
#include "stages/lvm/data_parallel.hpp"
#include "tests/stages/lvm/lvm_test_data.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

TrainSettings three_steps(const std::string& arch, std::size_t train_rows) {
  TrainSettings s = testdata::tiny(arch, 1);
  s.batch_size = std::int64_t((train_rows + 2) / 3);   // one epoch = 3 optimizer steps
  return s;
}

double max_weight_difference(const LvmModel& a, const LvmModel& b) {
  double worst = 0;
  const auto sb = model_state(b);
  for (const auto& [name, t] : model_state(a)) worst = std::max(worst, (t - sb.at(name)).abs().max().item<double>());
  return worst;
}

TEST(DataParallel, SharesCoverTheBatchInOrder) {
  // share() needs no peers for the arithmetic, but a group does: check it on a world of one.
  RankInfo lone{0, 1, "127.0.0.1", free_local_port()};
  auto group = DataParallelGroup::connect(lone, std::chrono::seconds(30));
  EXPECT_EQ(group->share(5, 12), (std::pair<std::size_t, std::size_t>{5, 12}));
}

TEST(DataParallel, SummedGradientsEqualTheFullBatchGradient) {
  WindowData data = testdata::synthetic_windows();
  const auto rows = data.rows_in_split(0);
  const std::size_t batch = 21;   // odd: the ranks take 11 and 10 rows
  ModelConfig config = default_model_config("gru", std::int64_t(data.dim), std::int64_t(data.context), 16, 1);
  torch::manual_seed(3);
  auto reference = make_model(config);
  torch::Tensor contexts, targets;
  gather_windows(data, rows, 0, batch, &contexts, &targets);
  lvm_loss("mse", reference->forward(contexts), targets, 0.07).backward();

  const int port = free_local_port();
  std::vector<std::vector<torch::Tensor>> rank_grads(2);
  auto rank_main = [&](int rank) {
    auto model = make_model(config);
    {
      torch::NoGradGuard no_grad;
      auto ref = reference->parameters(), mine = model->parameters();
      for (std::size_t i = 0; i < ref.size(); ++i) mine[i].copy_(ref[i]);
    }
    auto group = DataParallelGroup::connect({rank, 2, "127.0.0.1", port}, std::chrono::seconds(60));
    auto [first, last] = group->share(0, batch);
    torch::Tensor c, t;
    gather_windows(data, rows, first, last, &c, &t);
    (lvm_loss("mse", model->forward(c), t, 0.07) * (double(last - first) / double(batch))).backward();
    EXPECT_FALSE(group->sum_gradients(model->parameters(), false));
    for (const auto& p : model->parameters()) rank_grads[std::size_t(rank)].push_back(p.grad().clone());
  };
  std::thread other(rank_main, 1);
  rank_main(0);
  other.join();

  const auto ref = reference->parameters();
  for (int rank = 0; rank < 2; ++rank) {
    ASSERT_EQ(rank_grads[std::size_t(rank)].size(), ref.size());
    for (std::size_t i = 0; i < ref.size(); ++i) {
      const double diff = (rank_grads[std::size_t(rank)][i] - ref[i].grad()).abs().max().item<double>();
      EXPECT_LT(diff, 1e-6) << "rank " << rank << " parameter " << i;
      EXPECT_GT(ref[i].grad().abs().max().item<double>(), 0) << "parameter " << i << " has no gradient to compare";
    }
  }
}

TEST(DataParallel, TwoRanksTrainTheSameModelAsOneProcess) {
  WindowData data = testdata::synthetic_windows();
  for (const std::string arch : {"gru", "amn"}) {
    TrainSettings s = three_steps(arch, data.rows_in_split(0).size());
    testing::TestContext one_ctx("lvm.train"), two_ctx("lvm.train");
    TrainResult one = train_model(data, s, {}, one_ctx);
    TrainResult two = train_data_parallel(2, data, s, two_ctx);
    EXPECT_LT(max_weight_difference(*one.model, *two.model), 1e-5) << arch;
    EXPECT_NEAR(one.history.back().train_loss, two.history.back().train_loss, 1e-5) << arch;
    EXPECT_NEAR(one.history.back().val_cosine, two.history.back().val_cosine, 1e-5) << arch;
    // And it is a real training: the weights moved away from the initial ones.
    TrainSettings none = s;
    none.lr = 1e-12;
    TrainResult still = train_model(data, none, {}, one_ctx);
    EXPECT_GT(max_weight_difference(*one.model, *still.model), 1e-4) << arch;
  }
}

TEST(DataParallel, CancellingRankZeroStopsEveryRank) {
  WindowData data = testdata::synthetic_windows();
  TrainSettings s = three_steps("amn", data.rows_in_split(0).size());
  s.epochs = 50;
  struct CancelledContext : testing::TestContext {
    using TestContext::TestContext;
    bool cancelled() const override { return true; }
  } ctx("lvm.train");
  EXPECT_THROW(train_data_parallel(2, data, s, ctx), Error);
}

TEST(DataParallel, InfoNceIsRefused) {
  WindowData data = testdata::synthetic_windows();
  TrainSettings s = three_steps("amn", data.rows_in_split(0).size());
  s.loss = "infonce";
  testing::TestContext ctx("lvm.train");
  EXPECT_THROW(train_data_parallel(2, data, s, ctx), Error);
}

// Launched ranks (what srun/mpirun/torchrun do): the same `lvmflow run` twice with RANK /
// WORLD_SIZE / MASTER_ADDR / MASTER_PORT; rank 1 only serves rank 0's training.
TEST(DataParallel, LaunchedRanksThroughTheCliTrainLikeOneProcess) {
  namespace fs = std::filesystem;
  const fs::path dir = testing::make_temp_dir("lvm-launched");
  const fs::path file = dir / "pipeline.yaml";
  std::ofstream(file) << "pipeline: launched\nstore: store\nstages:\n"
                         "  - {name: articles, type: ingest.wikipedia, batch_size: 4,\n"
                         "     params: {path: \"" LVMFLOW_SOURCE_DIR "/data/sample-pages-articles.xml\", max_articles: 12}}\n"
                         "  - {name: chunks, type: chunk.text, inputs: [articles]}\n"
                         "  - {name: vectors, type: encode.hashed, inputs: [chunks]}\n"
                         "  - {name: windows, type: seq.window, inputs: [vectors], params: {context: 4, val_fraction: 0.2}}\n"
                         "  - {name: train, type: lvm.train, inputs: [windows],\n"
                         "     params: {arch: gru, hidden: 16, layers: 1, epochs: 2, batch_size: 40}}\n";
  const std::string run = std::string(LVMFLOW_BINARY) + " run " + file.string() + " --quiet --store ";
  ASSERT_EQ(std::system((run + (dir / "one").string() + " > " + (dir / "one.log").string() + " 2>&1").c_str()), 0);
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_local_port());
  const std::string two = run + (dir / "two").string();
  const std::string both = env + " RANK=1 " + two + " > " + (dir / "rank1.log").string() + " 2>&1 & p=$!; " + env +
                           " RANK=0 " + two + " > " + (dir / "rank0.log").string() +
                           " 2>&1; r0=$?; wait $p; r1=$?; exit $((r0 | r1))";
  ASSERT_EQ(std::system(both.c_str()), 0) << both;
  std::ifstream log(dir / "rank1.log");
  const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("rank 1/2: training gru"), std::string::npos) << text;   // it took part

  auto trained = [&](const fs::path& store_dir) {
    auto spec = load_spec(file, stage_registry(), {}, store_dir.string());
    Store store(store_dir);
    const auto plan = make_plan(spec, store, {});
    return load_checkpoint(store.artifact_path(plan.stages[plan.index_of("train")].key));
  };
  auto one = trained(dir / "one"), launched = trained(dir / "two");
  EXPECT_LT(max_weight_difference(*one.model, *launched.model), 1e-5);
  std::error_code ec;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir, ec);
}

TEST(DataParallel, LaunchedRankZeroReleasesTheOthersEvenWhenItFails) {
  const std::string env = "WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_local_port());
  const std::string lvmflow = LVMFLOW_BINARY;
  // Rank 1 would wait for trainings; rank 0 cannot even read its pipeline file.
  const std::string both = env + " RANK=1 timeout 60 " + lvmflow + " run /nonexistent.yaml > /dev/null 2>&1 & p=$!; " +
                           env + " RANK=0 " + lvmflow + " run /nonexistent.yaml > /dev/null 2>&1; r0=$?; wait $p; r1=$?; " +
                           "test $r0 = 2 && test $r1 = 0";
  EXPECT_EQ(std::system(both.c_str()), 0) << both;
}

}  // namespace
}  // namespace lvmflow

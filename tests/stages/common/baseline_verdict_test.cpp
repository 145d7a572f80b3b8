// The model-versus-baselines decision and its wording (stages/common/baseline_verdict.hpp).
#include <gtest/gtest.h>

#include <cmath>

#include "pipeline/error.hpp"
#include "stages/common/baseline_verdict.hpp"

namespace lvmflow {
namespace {

const std::vector<BaselineScore> kQuickstartBaselines = {
    {"linear_average", 0.4105, {}}, {"persistence", 0.3310, {}}, {"corpus_mean", 0.4768, {}}, {"random", 0.0012, {}}};

TEST(BaselineVerdict, ComparesWithTheStrongestBaselineNotTheLinearAverage) {
  // The quickstart case: far above the linear average, level with the corpus mean.
  BaselineVerdict v = judge_against_baselines(0.4782, {}, kQuickstartBaselines);
  EXPECT_EQ(v.baseline, "corpus_mean");
  EXPECT_NEAR(v.gain, 0.0014, 1e-12);
  EXPECT_EQ(v.margin, kMinBaselineMargin);
  EXPECT_EQ(v.outcome, VersusBaseline::WithinNoise);
  EXPECT_EQ(describe_verdict("amn", 0.4782, v),
            "amn 0.4782 vs best baseline corpus_mean 0.4768: +0.0014, within noise: no better than the "
            "baseline (margin 0.0050)");
  EXPECT_STREQ(verdict_word(v.outcome), "noise");
}

TEST(BaselineVerdict, BeatsAndWorseNeedMoreThanTheMargin) {
  EXPECT_EQ(judge_against_baselines(0.4819, {}, kQuickstartBaselines).outcome, VersusBaseline::Beats);
  EXPECT_EQ(judge_against_baselines(0.4817, {}, kQuickstartBaselines).outcome, VersusBaseline::WithinNoise);
  EXPECT_EQ(judge_against_baselines(0.4717, {}, kQuickstartBaselines).outcome, VersusBaseline::Worse);
  EXPECT_EQ(judge_against_baselines(0.4719, {}, kQuickstartBaselines).outcome, VersusBaseline::WithinNoise);
  BaselineVerdict worse = judge_against_baselines(0.40, {}, kQuickstartBaselines);
  EXPECT_EQ(describe_verdict("lstm", 0.40, worse),
            "lstm 0.4000 vs best baseline corpus_mean 0.4768: -0.0768, WORSE than the baseline (margin 0.0050)");
  EXPECT_STREQ(verdict_word(worse.outcome), "WORSE");
  EXPECT_THROW(judge_against_baselines(0.5, {}, {}), Error);
}

TEST(BaselineVerdict, MarginIsTwoStandardErrorsOfThePairedDifference) {
  // Differences alternate 0.00 / 0.10: mean 0.05, sample sd 0.05 * sqrt(n/(n-1)).
  std::vector<double> model, baseline;
  for (int i = 0; i < 100; ++i) {
    baseline.push_back(0.5);
    model.push_back(i % 2 ? 0.60 : 0.50);
  }
  const double sd = 0.05 * std::sqrt(100.0 / 99.0);
  EXPECT_NEAR(noise_margin(model, baseline), 2 * sd / 10.0, 1e-12);
  // Noisy few items: a +0.02 mean gain over 4 windows is not a win.
  std::vector<double> few_model = {0.9, 0.1, 0.9, 0.18}, few_base = {0.5, 0.5, 0.5, 0.5};
  std::vector<BaselineScore> few = {{"corpus_mean", 0.5, few_base}};
  BaselineVerdict v = judge_against_baselines(0.52, few_model, few);
  EXPECT_GT(v.margin, 0.3);
  EXPECT_EQ(v.outcome, VersusBaseline::WithinNoise);
  // Identical per-item gains have no spread: the floor applies.
  EXPECT_EQ(noise_margin({0.6, 0.7}, {0.5, 0.6}), kMinBaselineMargin);
  EXPECT_EQ(noise_margin({0.6}, {0.5}), kMinBaselineMargin);           // one item: no estimate
  EXPECT_EQ(noise_margin({0.6, 0.7}, {0.5}), kMinBaselineMargin);      // not paired
}

TEST(BaselineVerdict, PercentWordingForTopKAccuracies) {
  std::vector<BaselineScore> topk = {{"persistence", 0.125, {}}, {"linear_average", 0.2, {}}};
  BaselineVerdict v = judge_against_baselines(0.3, {}, topk);
  EXPECT_EQ(describe_verdict("amn", 0.3, v, true),
            "amn 30.00% vs best baseline linear_average 20.00%: +10.00 pts, beats it (margin 0.50 pts)");
}

}  // namespace
}  // namespace lvmflow

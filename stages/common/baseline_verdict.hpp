#pragma once
// Judging a trained model against the no-learning baselines, for every place that reports it
// (lvm.train's log, lvm.eval's table, retrieve.eval's Top-K table). A model is compared with
// the STRONGEST baseline, never a chosen one: beating the linear average means nothing when
// the corpus mean is as good. Torch- and FAISS-free.
//
// Noise margin: a gain only counts when it exceeds
//   max(kMinBaselineMargin, 2 x standard error of the mean per-item difference)
// where an item is a validation window (cosine) or a query (Top-K hit, 0 or 1), paired: model
// and baseline on the same items. Two standard errors is about 95% confidence that the model
// is better on items like these; the floor keeps differences of a few thousandths, which no
// application notices, from being called wins on large validation sets.
#include <cstddef>
#include <string>
#include <vector>

namespace lvmflow {

inline constexpr double kMinBaselineMargin = 0.005;

struct BaselineScore {
  std::string name;
  double score = 0;                // mean over items; higher is better
  std::vector<double> per_item;    // optional, for the paired margin
};

enum class VersusBaseline { Beats, WithinNoise, Worse };

struct BaselineVerdict {
  std::string baseline;            // the strongest baseline
  double baseline_score = 0;
  double gain = 0;                 // model minus strongest baseline
  double margin = kMinBaselineMargin;
  VersusBaseline outcome = VersusBaseline::WithinNoise;
};

// Index of the highest-scoring baseline (the first on a tie); throws lvmflow::Error when empty.
std::size_t strongest_baseline(const std::vector<BaselineScore>& baselines);

// max(min_margin, 2 standard errors of the mean of model[i] - baseline[i]); min_margin when
// the two are not the same non-trivial length.
double noise_margin(const std::vector<double>& model, const std::vector<double>& baseline,
                    double min_margin = kMinBaselineMargin);

BaselineVerdict judge_against_baselines(double model_score, const std::vector<double>& model_per_item,
                                        const std::vector<BaselineScore>& baselines,
                                        double min_margin = kMinBaselineMargin);

// One plain sentence, e.g.
//   "amn 0.4782 vs best baseline corpus_mean 0.4768: +0.0014, within noise (margin 0.0050)"
// `percent` prints scores and gain in percent points (Top-K accuracies).
std::string describe_verdict(const std::string& model, double model_score, const BaselineVerdict& verdict,
                             bool percent = false);
// One word for a table column: "beats", "noise", "WORSE".
const char* verdict_word(VersusBaseline outcome);

}  // namespace lvmflow

#include "stages/common/baseline_verdict.hpp"

#include <cmath>
#include <cstdio>

#include "pipeline/error.hpp"

namespace lvmflow {

std::size_t strongest_baseline(const std::vector<BaselineScore>& baselines) {
  if (baselines.empty()) throw Error("baseline verdict", "no baseline to compare with");
  std::size_t best = 0;
  for (std::size_t i = 1; i < baselines.size(); ++i)
    if (baselines[i].score > baselines[best].score) best = i;
  return best;
}

double noise_margin(const std::vector<double>& model, const std::vector<double>& baseline, double min_margin) {
  const std::size_t n = model.size();
  if (n < 2 || baseline.size() != n) return min_margin;
  double mean = 0;
  for (std::size_t i = 0; i < n; ++i) mean += model[i] - baseline[i];
  mean /= double(n);
  double var = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = model[i] - baseline[i] - mean;
    var += d * d;
  }
  var /= double(n - 1);   // sample variance of the paired differences
  return std::max(min_margin, 2.0 * std::sqrt(var / double(n)));
}

BaselineVerdict judge_against_baselines(double model_score, const std::vector<double>& model_per_item,
                                        const std::vector<BaselineScore>& baselines, double min_margin) {
  const BaselineScore& best = baselines[strongest_baseline(baselines)];
  BaselineVerdict v;
  v.baseline = best.name;
  v.baseline_score = best.score;
  v.gain = model_score - best.score;
  v.margin = noise_margin(model_per_item, best.per_item, min_margin);
  v.outcome = v.gain > v.margin ? VersusBaseline::Beats
              : v.gain < -v.margin ? VersusBaseline::Worse
                                   : VersusBaseline::WithinNoise;
  return v;
}

std::string describe_verdict(const std::string& model, double model_score, const BaselineVerdict& v, bool percent) {
  const double scale = percent ? 100.0 : 1.0;
  const char* unit = percent ? "%" : "";
  const char* points = percent ? " pts" : "";
  const char* outcome = v.outcome == VersusBaseline::Beats         ? "beats it"
                        : v.outcome == VersusBaseline::WithinNoise ? "within noise: no better than the baseline"
                                                                   : "WORSE than the baseline";
  char line[400];
  std::snprintf(line, sizeof line, "%s %.*f%s vs best baseline %s %.*f%s: %+.*f%s, %s (margin %.*f%s)", model.c_str(),
                percent ? 2 : 4, scale * model_score, unit, v.baseline.c_str(), percent ? 2 : 4,
                scale * v.baseline_score, unit, percent ? 2 : 4, scale * v.gain, points, outcome, percent ? 2 : 4,
                scale * v.margin, points);
  return line;
}

const char* verdict_word(VersusBaseline outcome) {
  switch (outcome) {
    case VersusBaseline::Beats: return "beats";
    case VersusBaseline::WithinNoise: return "noise";
    case VersusBaseline::Worse: return "WORSE";
  }
  return "";
}

}  // namespace lvmflow

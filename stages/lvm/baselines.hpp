#pragma once
// The no-learning predictors every trained model is compared against (seeds/004):
// linear average (mean of the context), persistence (last context vector), the corpus mean
// vector (mean of the training targets, one answer for everything) and random unit vectors.
// All predictions are L2-normalised like the models' outputs, so MSE compares like with like.
// Torch-free.
#include <cstdint>
#include <string>
#include <vector>

#include "stages/common/baseline_verdict.hpp"
#include "stages/lvm/window_data.hpp"

namespace lvmflow {

const std::vector<std::string>& baseline_names();   // linear_average, persistence, corpus_mean, random

class BaselinePredictor {
 public:
  // `train` supplies the corpus mean (training split only, so nothing leaks from validation).
  // Throws lvmflow::Error for an unknown name.
  BaselinePredictor(const std::string& name, const WindowData& train, std::uint64_t seed = 42);
  const std::string& name() const { return name_; }
  // Prediction for window `row` of `data` into out[0..D).
  void predict(const WindowData& data, std::size_t row, float* out) const;

 private:
  std::string name_;
  std::uint64_t seed_;
  std::vector<float> corpus_mean_;
};

struct PredictionScore {
  double cosine = 0;   // mean cosine(prediction, target)
  double mse = 0;      // mean over windows of mean squared error over dimensions
  std::size_t count = 0;
};

double cosine_similarity(const float* a, const float* b, std::size_t d);
double mean_squared_error(const float* a, const float* b, std::size_t d);
// Normalises v in place to unit L2 norm (leaves an all-zero vector alone).
void l2_normalize(float* v, std::size_t d);
// Mean pairwise cosine of `count` vectors of width d (1 when fewer than two): how much a
// roll-out collapses onto one direction.
double mean_pairwise_cosine(const float* vectors, std::size_t count, std::size_t d);

// Scores a baseline on `rows` of `data`; `per_window`, when given, receives each row's cosine.
PredictionScore score_baseline(const BaselinePredictor& baseline, const WindowData& data,
                               const std::vector<std::size_t>& rows, std::vector<double>* per_window = nullptr);
// Every baseline's validation cosine with its per-window values, for judging a model against
// the strongest (stages/common/baseline_verdict.hpp).
std::vector<BaselineScore> score_all_baselines(const WindowData& data, const std::vector<std::size_t>& rows,
                                               std::uint64_t seed = 42);
// cosine(predictions[k], target of rows[k]) for each k; `predictions` is [rows.size() x dim].
std::vector<double> per_window_cosines(const float* predictions, const WindowData& data,
                                       const std::vector<std::size_t>& rows);

}  // namespace lvmflow

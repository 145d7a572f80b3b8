#include "stages/lvm/baselines.hpp"

#include <cmath>
#include <random>

#include "pipeline/error.hpp"

namespace lvmflow {

const std::vector<std::string>& baseline_names() {
  static const std::vector<std::string> names = {"linear_average", "persistence", "corpus_mean", "random"};
  return names;
}

double cosine_similarity(const float* a, const float* b, std::size_t d) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < d; ++i) dot += double(a[i]) * b[i], na += double(a[i]) * a[i], nb += double(b[i]) * b[i];
  // Same floor as torch's cosine_similarity (eps 1e-8 on each norm).
  return dot / (std::max(std::sqrt(na), 1e-8) * std::max(std::sqrt(nb), 1e-8));
}

double mean_squared_error(const float* a, const float* b, std::size_t d) {
  double sum = 0;
  for (std::size_t i = 0; i < d; ++i) sum += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return d ? sum / double(d) : 0.0;
}

void l2_normalize(float* v, std::size_t d) {
  double norm = 0;
  for (std::size_t i = 0; i < d; ++i) norm += double(v[i]) * v[i];
  norm = std::sqrt(norm);
  if (norm == 0) return;
  for (std::size_t i = 0; i < d; ++i) v[i] = float(v[i] / norm);
}

double mean_pairwise_cosine(const float* vectors, std::size_t count, std::size_t d) {
  if (count < 2) return 1.0;
  double sum = 0;
  std::size_t pairs = 0;
  for (std::size_t i = 0; i < count; ++i)
    for (std::size_t j = i + 1; j < count; ++j, ++pairs) sum += cosine_similarity(vectors + i * d, vectors + j * d, d);
  return sum / double(pairs);
}

BaselinePredictor::BaselinePredictor(const std::string& name, const WindowData& train, std::uint64_t seed)
    : name_(name), seed_(seed) {
  bool known = false;
  for (const auto& n : baseline_names()) known |= n == name;
  if (!known)
    throw Error("baseline", "unknown baseline '" + name + "'", "use linear_average, persistence, corpus_mean or random");
  if (name == "corpus_mean") {
    corpus_mean_.assign(train.dim, 0.0f);
    std::vector<double> sum(train.dim, 0.0);
    std::size_t count = 0;
    for (std::size_t r = 0; r < train.rows(); ++r) {
      if (train.splits[r] != 0) continue;
      const float* t = train.target_of(r);
      for (std::size_t i = 0; i < train.dim; ++i) sum[i] += t[i];
      ++count;
    }
    for (std::size_t i = 0; i < train.dim; ++i) corpus_mean_[i] = count ? float(sum[i] / double(count)) : 0.0f;
    l2_normalize(corpus_mean_.data(), train.dim);
  }
}

void BaselinePredictor::predict(const WindowData& data, std::size_t row, float* out) const {
  const std::size_t d = data.dim, n = data.context;
  const float* context = data.context_of(row);
  if (name_ == "linear_average") {
    for (std::size_t i = 0; i < d; ++i) {
      double s = 0;
      for (std::size_t k = 0; k < n; ++k) s += context[k * d + i];
      out[i] = float(s / double(n));
    }
  } else if (name_ == "persistence") {
    std::copy(context + (n - 1) * d, context + n * d, out);
  } else if (name_ == "corpus_mean") {
    if (corpus_mean_.size() != d)
      throw Error("baseline corpus_mean", "vector width differs from the training windows", "use one encoder throughout");
    std::copy(corpus_mean_.begin(), corpus_mean_.end(), out);
  } else {   // random: a fixed draw per window, so repeated evaluations agree
    std::mt19937_64 rng(seed_ * 0x9E3779B97F4A7C15ull + row);
    std::normal_distribution<float> normal;
    for (std::size_t i = 0; i < d; ++i) out[i] = normal(rng);
  }
  l2_normalize(out, d);
}

PredictionScore score_baseline(const BaselinePredictor& baseline, const WindowData& data,
                               const std::vector<std::size_t>& rows, std::vector<double>* per_window) {
  PredictionScore s;
  std::vector<float> pred(data.dim);
  if (per_window) per_window->clear();
  for (std::size_t r : rows) {
    baseline.predict(data, r, pred.data());
    const double cosine = cosine_similarity(pred.data(), data.target_of(r), data.dim);
    if (per_window) per_window->push_back(cosine);
    s.cosine += cosine;
    s.mse += mean_squared_error(pred.data(), data.target_of(r), data.dim);
  }
  s.count = rows.size();
  if (s.count) s.cosine /= double(s.count), s.mse /= double(s.count);
  return s;
}

std::vector<BaselineScore> score_all_baselines(const WindowData& data, const std::vector<std::size_t>& rows,
                                               std::uint64_t seed) {
  std::vector<BaselineScore> scores;
  for (const auto& name : baseline_names()) {
    BaselineScore b;
    b.name = name;
    b.score = score_baseline(BaselinePredictor(name, data, seed), data, rows, &b.per_item).cosine;
    scores.push_back(std::move(b));
  }
  return scores;
}

std::vector<double> per_window_cosines(const float* predictions, const WindowData& data,
                                       const std::vector<std::size_t>& rows) {
  std::vector<double> out(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k)
    out[k] = cosine_similarity(predictions + k * data.dim, data.target_of(rows[k]), data.dim);
  return out;
}

}  // namespace lvmflow

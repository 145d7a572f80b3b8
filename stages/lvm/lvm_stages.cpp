// lvm.train (barrier), lvm.predict (map), lvm.eval (barrier).
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/stage.hpp"
#include "stages/common/npy.hpp"
#include "stages/lvm/baselines.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "stages/lvm/fast_inference.hpp"
#include "stages/lvm/data_parallel.hpp"
#include "stages/lvm/trainer.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEncoderFile = "encoder.json";

const ParamDoc kInferenceDTypeParam{
    "dtype", ParamType::String, "float32",
    "weights for inference: float32, bfloat16, or int8 (per-row scales; activations quantised per row). "
    "int8 is the fastest at batch 1, bfloat16 from batch 32; lvm.eval reports their val cosine change against "
    "float32 (docs/stages/lvm.md)"};

// Predictions of `model` for `rows` of `data`, [rows.size() x D], in chunks to bound memory.
std::vector<float> predict_rows(const FastLvm& model, const WindowData& data, const std::vector<std::size_t>& rows) {
  c10::InferenceMode inference;
  std::vector<float> out(rows.size() * data.dim);
  constexpr std::size_t kChunk = 256;
  for (std::size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const std::size_t end = std::min(rows.size(), begin + kChunk);
    torch::Tensor contexts, targets;
    gather_windows(data, rows, begin, end, &contexts, &targets);
    auto pred = model.forward(contexts).contiguous();
    std::memcpy(out.data() + begin * data.dim, pred.data_ptr<float>(), sizeof(float) * pred.numel());
  }
  return out;
}

void check_model_fits(const ModelConfig& config, const WindowData& data, const std::string& where) {
  if (std::size_t(config.input_dim) != data.dim)
    throw Error(where, "model '" + config.arch + "' takes " + std::to_string(config.input_dim) +
                           "-D vectors, the windows hold " + std::to_string(data.dim) + "-D vectors",
                "train the model on windows from the same encoder");
  if (std::size_t(config.context) != data.context)
    throw Error(where, "model '" + config.arch + "' was trained on " + std::to_string(config.context) +
                           " context vectors, the windows have " + std::to_string(data.context),
                "use the same `context:` in seq.window for training and prediction");
}

// ---------------------------------------------------------------------------------------
// lvm.train

TrainSettings train_settings(const Params& p) {
  TrainSettings s;
  s.arch = p.get_string("arch");
  s.hidden = p.get_int("hidden");
  s.layers = p.get_int("layers");
  s.epochs = p.get_int("epochs");
  s.batch_size = p.get_int("batch_size");
  s.lr = p.get_float("lr");
  s.weight_decay = p.get_float("weight_decay");
  s.grad_clip = p.get_float("grad_clip");
  s.patience = p.get_int("patience");
  s.factor = p.get_float("factor");
  s.loss = p.get_string("loss");
  s.temperature = p.get_float("temperature");
  s.seed = static_cast<std::uint64_t>(p.get_int("seed"));
  return s;
}

class TrainStage : public BarrierStage {
 public:
  explicit TrainStage(const Params& params) : params_(params), settings_(train_settings(params)) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = "stage '" + ctx.stage_name() + "' (lvm.train)";
    if (inputs.empty()) throw Error(where, "no input", "give lvm.train a seq.window stage as input");
    WindowData data = collect_windows(inputs[0], where);
    if (data.rows() == 0) throw Error(where, "no windows to train on", "check that seq.window produced windows");
    if (std::int64_t threads = params_.get_int("threads"); threads > 0) set_compute_threads(int(threads));

    const std::string fingerprint = windows_fingerprint(data);
    fs::path resume_dir;
    const int world_size = int(params_.get_int("world_size"));
    const bool data_parallel = trains_data_parallel(world_size);
    if (params_.get_bool("resume") && !data_parallel) resume_dir = resume_folder(ctx, fingerprint);
    TrainResult result = data_parallel ? train_data_parallel(world_size, data, settings_, ctx)
                                       : train_model(data, settings_, resume_dir, ctx);

    const auto val_rows = data.rows_in_split(1);
    std::vector<BaselineScore> baselines;
    BaselineVerdict verdict;
    if (!val_rows.empty()) {
      baselines = score_all_baselines(data, val_rows);
      const std::vector<float> pred = predict_rows(*make_fast_lvm(*result.model, LvmDType::Float32), data, val_rows);
      verdict = judge_against_baselines(result.best_val_cosine, per_window_cosines(pred.data(), data, val_rows),
                                        baselines);
    }
    const double linear_cosine = baselines.empty() ? 0.0 : baselines[0].score;   // baseline_names()[0]
    const std::int64_t n_params = result.model->parameter_count();

    Json info;
    info["format"] = "lvmflow.lvm/1";
    info["arch"] = settings_.arch;
    info["context"] = std::int64_t(data.context);
    info["dim"] = std::int64_t(data.dim);
    info["training"] = settings_json();
    Json metrics;
    metrics["best_epoch"] = result.best_epoch;
    metrics["val_cosine"] = result.best_val_cosine;
    metrics["val_mse"] = result.best_val_mse;
    metrics["linear_average_val_cosine"] = linear_cosine;
    if (!baselines.empty()) {
      metrics["best_baseline"] = verdict.baseline;
      metrics["best_baseline_val_cosine"] = verdict.baseline_score;
      metrics["versus_best_baseline"] = std::string(verdict_word(verdict.outcome));
      metrics["baseline_margin"] = verdict.margin;
    }
    metrics["train_samples_per_s"] = result.train_samples_per_s;
    metrics["resumed_from_epoch"] = result.resumed_from_epoch;
    Json::Array history;
    for (const auto& h : result.history) {
      Json e;
      e["epoch"] = h.epoch, e["train_loss"] = h.train_loss, e["val_loss"] = h.val_loss;
      e["val_cosine"] = h.val_cosine, e["val_mse"] = h.val_mse, e["lr"] = h.lr, e["seconds"] = h.seconds;
      history.push_back(std::move(e));
    }
    metrics["history"] = Json(std::move(history));
    info["metrics"] = metrics;
    Json windows;
    windows["train"] = std::int64_t(data.rows() - val_rows.size());
    windows["val"] = std::int64_t(val_rows.size());
    windows["fingerprint"] = fingerprint;
    windows["stage"] = inputs[0].name;
    info["windows"] = windows;
    // The encoder that made the vectors, when seq.window passed its description on.
    if (!inputs[0].dir.empty() && fs::exists(inputs[0].dir / kEncoderFile)) {
      Json encoder = read_json_file((inputs[0].dir / kEncoderFile).string());
      // encode.* names its model by `model_fingerprint`; the file as a whole also counts rows.
      const Json* model_fingerprint = encoder.find("model_fingerprint");
      info["encoder_fingerprint"] = model_fingerprint && model_fingerprint->is_string()
                                        ? model_fingerprint->as_string()
                                        : sha256_file(inputs[0].dir / kEncoderFile);
      info["encoder"] = encoder;
    }
    save_checkpoint(*result.model, info, ctx.artifact_dir());

    ctx.metric("best_val_cosine", result.best_val_cosine, -1, settings_.arch);
    ctx.metric("best_epoch", double(result.best_epoch), -1, settings_.arch);
    ctx.metric("params", double(n_params), -1, settings_.arch);
    ctx.metric("train_samples_per_s", result.train_samples_per_s, -1, settings_.arch);
    if (!val_rows.empty()) {
      char line[120];
      std::snprintf(line, sizeof line, "%s: best epoch %lld, %lld params; ", settings_.arch.c_str(),
                    static_cast<long long>(result.best_epoch), static_cast<long long>(n_params));
      ctx.log(line + describe_verdict(settings_.arch, result.best_val_cosine, verdict));
    }
    // The committed checkpoint supersedes the resume state.
    if (!resume_dir.empty()) {
      std::error_code ec;
      fs::remove_all(resume_dir, ec);
    }

    Batch row;
    row.ids = {settings_.arch};
    row.text["arch"] = {settings_.arch};
    row.ints["params"] = {n_params};
    row.reals["val_cosine"] = {result.best_val_cosine};
    out.emit(std::move(row));
  }

 private:
  // Resume state is named by everything that decides the result except the epoch count, so a
  // rerun after an interruption - even one asking for more epochs - finds it.
  fs::path resume_folder(StageContext& ctx, const std::string& fingerprint) const {
    Sha256 h;
    h.field("lvm.train");
    for (const auto& [name, value] : params_.values()) {
      if (name == "threads" || name == "resume" || name == "epochs") continue;
      h.field(name).field(value.canonical);
    }
    h.field(fingerprint);
    return ctx.resume_dir(h.hex().substr(0, 24));
  }

  Json settings_json() const {
    Json t;
    t["epochs"] = settings_.epochs, t["batch_size"] = settings_.batch_size, t["lr"] = settings_.lr;
    t["weight_decay"] = settings_.weight_decay, t["grad_clip"] = settings_.grad_clip;
    t["patience"] = settings_.patience, t["factor"] = settings_.factor, t["loss"] = settings_.loss;
    t["temperature"] = settings_.temperature, t["seed"] = std::int64_t(settings_.seed);
    t["optimizer"] = "AdamW", t["scheduler"] = "ReduceLROnPlateau(val_loss)";
    return t;
  }

  Params params_;
  TrainSettings settings_;
};

// ---------------------------------------------------------------------------------------
// lvm.predict

class PredictStage : public MapStage {
 public:
  explicit PredictStage(const Params& params)
      : rollout_steps_(std::size_t(params.get_int("rollout_steps"))),
        dtype_(parse_lvm_dtype(params.get_string("dtype"), "param dtype")) {}

  void start(StageContext& ctx) override {
    where_ = "stage '" + ctx.stage_name() + "' (lvm.predict)";
    if (ctx.input_count() < 2)
      throw Error(where_, "no model input", "list a lvm.train stage as the second input: inputs: [windows, train]");
    checkpoint_ = load_checkpoint(ctx.input_dir(1));
    fast_ = make_fast_lvm(*checkpoint_.model, dtype_);
    model_name_ = ctx.input_name(1);
    if (rollout_steps_ > 0) rollout_path_ = ctx.artifact_dir() / "rollout.npy";
  }

  Batch process(StageContext& ctx, const Batch& in) override {
    Batch out;
    out.seq = in.seq;
    if (in.rows() == 0) return out;
    // The windows' vectors: seq.window (a barrier) committed its folder before emitting.
    std::call_once(vectors_once_, [&] { vectors_ = window_vectors(ctx.input_dir(0), where_); });
    WindowData data;
    data.vectors = vectors_;
    add_windows(data, in, where_);
    check_model_fits(checkpoint_.model->config(), data, where_);
    const FastLvm& model = *fast_;
    const std::size_t d = data.dim, n = data.context, rows = data.rows();
    std::vector<std::size_t> all(rows);
    for (std::size_t r = 0; r < rows; ++r) all[r] = r;
    std::vector<float> pred = predict_rows(model, data, all);

    out.ids = data.ids;
    out.ints["article_id"] = data.article_ids;
    out.ints["target_position"] = data.target_positions;
    out.ints["split"] = data.splits;
    out.text["model"] = std::vector<std::string>(rows, model_name_);
    auto& cosine = out.reals["cosine"];
    for (std::size_t r = 0; r < rows; ++r) cosine.push_back(cosine_similarity(pred.data() + r * d, data.target_of(r), d));
    out.dim = d;
    out.vectors = pred;

    std::vector<float> rollout;
    if (rollout_steps_ > 0) {
      // Autoregressive roll-out: the context slides forward over the model's own predictions.
      c10::InferenceMode inference;
      torch::Tensor contexts, targets;
      gather_windows(data, all, 0, rows, &contexts, &targets);
      torch::Tensor step = torch::from_blob(pred.data(), {std::int64_t(rows), std::int64_t(d)}).clone();
      std::vector<torch::Tensor> steps = {step};
      for (std::size_t k = 1; k < rollout_steps_; ++k) {
        contexts = torch::cat({contexts.narrow(1, 1, std::int64_t(n) - 1), step.unsqueeze(1)}, 1);
        step = model.forward(contexts);
        steps.push_back(step);
      }
      auto stacked = torch::stack(steps, 1).contiguous();   // [rows, K, D]
      rollout.assign(stacked.data_ptr<float>(), stacked.data_ptr<float>() + stacked.numel());
      auto& degeneration = out.reals["rollout_degeneration"];
      for (std::size_t r = 0; r < rows; ++r)
        degeneration.push_back(mean_pairwise_cosine(rollout.data() + r * rollout_steps_ * d, rollout_steps_, d));
    }

    std::lock_guard lock(mutex_);
    for (std::size_t r = 0; r < rows; ++r) {
      auto& acc = data.splits[r] == 1 ? val_ : train_;
      acc.sum += out.reals["cosine"][r];
      ++acc.count;
      if (rollout_steps_ > 0) degeneration_sum_ += out.reals["rollout_degeneration"][r];
    }
    if (rollout_steps_ > 0) pending_rollouts_[out.ids.front()] = std::move(rollout);
    return out;
  }

  void consume_ordered(StageContext& ctx, const Batch& batch) override {
    if (batch.rows() == 0) return;
    // The predictions live once, in vectors.npy; batches.bin refers to it (StageInfo::vectors_file).
    if (!vectors_writer_) vectors_writer_ = std::make_unique<NpyWriter>(ctx.artifact_dir() / VectorFile::kFileName, batch.dim);
    vectors_writer_->append(batch.vectors.data(), batch.rows());
    if (rollout_steps_ == 0) return;
    std::vector<float> rollout;
    {
      std::lock_guard lock(mutex_);
      auto it = pending_rollouts_.find(batch.ids.front());
      if (it == pending_rollouts_.end()) return;
      rollout = std::move(it->second);
      pending_rollouts_.erase(it);
    }
    if (!rollout_writer_) rollout_writer_ = std::make_unique<NpyWriter>(rollout_path_, rollout_steps_ * batch.dim);
    rollout_writer_->append(rollout.data(), batch.rows());
  }

  void finish(StageContext& ctx) override {
    if (vectors_writer_) vectors_writer_->close();
    if (rollout_writer_) rollout_writer_->close();
    const std::string& label = model_name_;
    if (val_.count) ctx.metric("val_cosine", val_.sum / double(val_.count), -1, label);
    if (train_.count) ctx.metric("train_cosine", train_.sum / double(train_.count), -1, label);
    ctx.metric("windows", double(val_.count + train_.count), -1, label);
    if (rollout_steps_ > 0 && val_.count + train_.count > 0) {
      double degeneration = degeneration_sum_ / double(val_.count + train_.count);
      ctx.metric("rollout_degeneration", degeneration, std::int64_t(rollout_steps_), label);
      char line[200];
      std::snprintf(line, sizeof line,
                    "%s: %zu-step roll-outs, mean pairwise cosine of generated vectors %.4f (1 = collapsed); "
                    "vectors in rollout.npy [windows, steps, dim]",
                    label.c_str(), rollout_steps_, degeneration);
      ctx.log(line);
    }
  }

 private:
  struct Mean {
    double sum = 0;
    std::size_t count = 0;
  };
  std::size_t rollout_steps_;
  LvmDType dtype_;
  std::string where_, model_name_;
  LoadedCheckpoint checkpoint_;
  std::unique_ptr<FastLvm> fast_;
  std::mutex mutex_;
  Mean train_, val_;
  double degeneration_sum_ = 0;
  std::map<std::string, std::vector<float>> pending_rollouts_;   // by first window id
  fs::path rollout_path_;
  std::unique_ptr<NpyWriter> rollout_writer_, vectors_writer_;
  std::once_flag vectors_once_;
  std::shared_ptr<const VectorRows> vectors_;
};

// ---------------------------------------------------------------------------------------
// lvm.eval

struct EvalRow {
  std::string name, arch;
  std::int64_t params = 0;
  double cosine = 0, mse = 0, latency_ms = 0, latency_median_ms = 0;
  std::vector<double> per_window;   // cosine per validation window
  std::string verdict;              // models: beats / noise / WORSE; the strongest baseline: best
  double cosine_change_vs_float32 = 0;   // models, dtype other than float32
};

// Mean cosine and MSE of `model`'s predictions for `rows` against their targets.
std::pair<double, double> score_model(const FastLvm& model, const WindowData& data, const std::vector<std::size_t>& rows) {
  std::vector<float> pred = predict_rows(model, data, rows);
  double cosine = 0, mse = 0;
  for (std::size_t k = 0; k < rows.size(); ++k) {
    cosine += cosine_similarity(pred.data() + k * data.dim, data.target_of(rows[k]), data.dim);
    mse += mean_squared_error(pred.data() + k * data.dim, data.target_of(rows[k]), data.dim);
  }
  return {cosine / double(rows.size()), mse / double(rows.size())};
}

struct Latency {
  double best_ms = 0, median_ms = 0;
};

// Wall time of single-window predictions over the first validation windows. The best of them
// is what the table shows: on a machine shared with other work the median mostly measures
// the others (both are stored as metrics).
Latency latency_per_query(const FastLvm& model, const WindowData& data, const std::vector<std::size_t>& rows) {
  c10::InferenceMode inference;
  const std::size_t count = std::min<std::size_t>(rows.size(), 64);
  std::vector<double> times;
  for (std::size_t i = 0; i < count + 5; ++i) {   // the first 5 warm up
    torch::Tensor contexts, targets;
    gather_windows(data, rows, i % count, i % count + 1, &contexts, &targets);
    auto start = std::chrono::steady_clock::now();
    auto pred = model.forward(contexts);
    (void)pred.data_ptr<float>();
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i >= 5) times.push_back(ms);
  }
  std::sort(times.begin(), times.end());
  Latency l;
  if (!times.empty()) l.best_ms = times.front(), l.median_ms = times[times.size() / 2];
  return l;
}

std::string format_table(const std::vector<EvalRow>& rows, const std::string& best_baseline, double best_cosine,
                         std::size_t val_windows) {
  std::ostringstream t;
  char line[256];
  std::snprintf(line, sizeof line, "%-22s %-12s %12s %10s %10s %10s %8s %-8s %10s\n", "model", "arch", "params",
                "val_cos", "val_mse", "gain", "gain_%", "verdict", "ms/query");
  t << line;
  for (const auto& r : rows) {
    const double gain = r.cosine - best_cosine;
    std::snprintf(line, sizeof line, "%-22s %-12s %12lld %10.4f %10.6f %+10.4f %+7.1f%% %-8s %10.3f\n", r.name.c_str(),
                  r.arch.c_str(), static_cast<long long>(r.params), r.cosine, r.mse, gain,
                  best_cosine != 0 ? 100.0 * gain / std::abs(best_cosine) : 0.0, r.verdict.c_str(), r.latency_ms);
    t << line;
  }
  t << "(" << val_windows << " validation windows; gain = val cosine minus the strongest baseline's (" << best_baseline
    << "); verdict: beats / noise / WORSE against it, noise = within max(" << kMinBaselineMargin
    << ", 2 standard errors of the per-window difference); "
    << "ms/query: models = best of up to 64 batch-1 forward passes, baselines = mean per window)\n";
  return t.str();
}

class EvalStage : public BarrierStage {
 public:
  explicit EvalStage(const Params& params)
      : seed_(std::uint64_t(params.get_int("seed"))), dtype_(parse_lvm_dtype(params.get_string("dtype"), "param dtype")) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = "stage '" + ctx.stage_name() + "' (lvm.eval)";
    if (inputs.empty()) throw Error(where, "no input", "inputs: [windows, train_a, train_b, ...]");
    WindowData data = collect_windows(inputs[0], where);
    const auto val_rows = data.rows_in_split(1);
    if (val_rows.empty())
      throw Error(where, "no validation windows", "set seq.window's val_fraction above 0 and give it several articles");

    std::vector<EvalRow> rows;
    double linear_cosine = 0;
    std::vector<BaselineScore> baselines;
    for (const auto& name : baseline_names()) {
      if (ctx.cancelled()) return;
      BaselinePredictor baseline(name, data, seed_);
      EvalRow row{name, "baseline", 0, 0, 0, 0, 0, {}, "-"};
      auto start = std::chrono::steady_clock::now();
      PredictionScore s = score_baseline(baseline, data, val_rows, &row.per_window);
      row.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() /
                       double(val_rows.size());
      row.latency_median_ms = row.latency_ms;
      row.cosine = s.cosine, row.mse = s.mse;
      if (name == "linear_average") linear_cosine = s.cosine;
      baselines.push_back({name, s.cosine, row.per_window});
      rows.push_back(std::move(row));
    }
    const std::size_t strongest = strongest_baseline(baselines);
    rows[strongest].verdict = "best";
    for (std::size_t i = 1; i < inputs.size(); ++i) {
      if (ctx.cancelled()) return;
      LoadedCheckpoint ckpt = load_checkpoint(inputs[i].dir);
      const ModelConfig& config = ckpt.model->config();
      check_model_fits(config, data, where + " input '" + inputs[i].name + "'");
      auto model = make_fast_lvm(*ckpt.model, dtype_);
      EvalRow row{inputs[i].name, config.arch, ckpt.model->parameter_count(), 0, 0, 0, 0, {}, ""};
      std::vector<float> pred = predict_rows(*model, data, val_rows);
      row.per_window = per_window_cosines(pred.data(), data, val_rows);
      for (std::size_t k = 0; k < val_rows.size(); ++k) {
        row.cosine += row.per_window[k];
        row.mse += mean_squared_error(pred.data() + k * data.dim, data.target_of(val_rows[k]), data.dim);
      }
      row.cosine /= double(val_rows.size());
      row.mse /= double(val_rows.size());
      if (dtype_ != LvmDType::Float32) {
        // What rounding the weights costs: the same windows with float32 weights.
        const double float32_cosine = score_model(*make_fast_lvm(*ckpt.model, LvmDType::Float32), data, val_rows).first;
        row.cosine_change_vs_float32 = row.cosine - float32_cosine;
      }
      Latency latency = latency_per_query(*model, data, val_rows);
      row.latency_ms = latency.best_ms;
      row.latency_median_ms = latency.median_ms;
      rows.push_back(std::move(row));
    }

    const double best_cosine = baselines[strongest].score;
    std::string verdicts;
    for (auto& r : rows) {
      if (r.arch == "baseline") continue;
      BaselineVerdict v = judge_against_baselines(r.cosine, r.per_window, baselines);
      r.verdict = verdict_word(v.outcome);
      verdicts += describe_verdict(r.name, r.cosine, v) + "\n";
      ctx.metric("beats_best_baseline", v.outcome == VersusBaseline::Beats ? 1.0 : 0.0, -1, r.name);
    }
    std::string table = format_table(rows, baselines[strongest].name, best_cosine, val_rows.size());
    if (dtype_ != LvmDType::Float32) {
      table += std::string("models run with ") + to_string(dtype_) + " weights; val cosine change against float32:";
      for (const auto& r : rows)
        if (r.arch != "baseline") {
          char change[96];
          std::snprintf(change, sizeof change, " %s %+.5f", r.name.c_str(), r.cosine_change_vs_float32);
          table += change;
        }
      table += "\n";
    }
    ctx.log("validation results\n" + table + verdicts);
    ctx.metric_text("eval_table", table);
    Batch batch;
    for (const auto& r : rows) {
      ctx.metric("val_cosine", r.cosine, -1, r.name);
      ctx.metric("val_mse", r.mse, -1, r.name);
      ctx.metric("gain_vs_linear_average", r.cosine - linear_cosine, -1, r.name);
      ctx.metric("gain_vs_best_baseline", r.cosine - best_cosine, -1, r.name);
      ctx.metric("latency_ms", r.latency_ms, -1, r.name);
      ctx.metric("latency_median_ms", r.latency_median_ms, -1, r.name);
      if (r.arch != "baseline") ctx.metric("params", double(r.params), -1, r.name);
      if (r.arch != "baseline" && dtype_ != LvmDType::Float32)
        ctx.metric("val_cosine_change_vs_float32", r.cosine_change_vs_float32, -1, r.name);
      batch.ids.push_back(r.name);
      batch.text["arch"].push_back(r.arch);
      batch.ints["params"].push_back(r.params);
      batch.reals["val_cosine"].push_back(r.cosine);
      batch.reals["val_mse"].push_back(r.mse);
      batch.reals["gain_vs_linear_average"].push_back(r.cosine - linear_cosine);
      batch.reals["gain_vs_best_baseline"].push_back(r.cosine - best_cosine);
      batch.text["verdict"].push_back(r.verdict);
      batch.reals["latency_ms"].push_back(r.latency_ms);
    }
    out.emit(std::move(batch));
  }

 private:
  std::uint64_t seed_;
  LvmDType dtype_;
};

}  // namespace

void register_lvm_stages(StageRegistry& registry) {
  {
    StageInfo info;
    info.type = "lvm.train";
    info.version = 1;
    info.kind = StageKind::Barrier;
    info.summary = "Trains one next-vector model (amn, lstm, gru, transformer) on seq.window windows; "
                   "writes model.safetensors + model.json";
    info.params = {
        {"arch", ParamType::String, "amn", "architecture: amn, lstm, gru or transformer"},
        {"hidden", ParamType::Int, "0", "hidden width; 0 = the architecture's default (512, amn 256)"},
        {"layers", ParamType::Int, "0", "layers; 0 = the architecture's default (lstm 2, gru 4, transformer 4)"},
        {"epochs", ParamType::Int, "20", "training epochs"},
        {"batch_size", ParamType::Int, "32", "windows per optimizer step"},
        {"lr", ParamType::Float, "0.0005", "AdamW learning rate"},
        {"weight_decay", ParamType::Float, "0.01", "AdamW weight decay"},
        {"grad_clip", ParamType::Float, "1", "max global gradient norm; 0 disables clipping"},
        {"patience", ParamType::Int, "3", "ReduceLROnPlateau: epochs without val-loss improvement before the lr drops"},
        {"factor", ParamType::Float, "0.5", "ReduceLROnPlateau: lr multiplier"},
        {"loss", ParamType::String, "mse", "mse, cosine or infonce"},
        {"temperature", ParamType::Float, "0.07", "InfoNCE temperature"},
        {"seed", ParamType::Int, "42", "seeds initial weights, dropout and shuffling"},
        {"threads", ParamType::Int, "1",
         "torch (and OpenBLAS) threads; 0 = leave the process setting. 1 by default: a pipeline's trainings run "
         "side by side, and with more threads than free cores OpenMP's spin-waits make training up to 10x "
         "slower (docs/benchmarks/lvm.md)",
         false, false},
        {"resume", ParamType::Bool, "true",
         "keep per-epoch state beside the staging folders and continue an interrupted run (single-process "
         "training only)", false, false},
        {"world_size", ParamType::Int, "1",
         "data-parallel ranks (c10d Gloo): > 1 trains on that many ranks in this process over 127.0.0.1; under "
         "srun/mpirun/torchrun the launched processes are the ranks (docs/scale-out.md). Same model as one rank "
         "within float rounding (models with dropout draw their masks per rank)",
         false, false},
    };
    info.min_inputs = 1;
    info.max_inputs = 1;
    info.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<TrainStage>(p); };
    info.validate = [](const Params& p) {
      if (!is_model_architecture(p.get_string("arch")))
        throw Error("param arch", "unknown architecture '" + p.get_string("arch") + "'",
                    "use one of amn, lstm, gru, transformer");
      const std::string loss = p.get_string("loss");
      if (loss != "mse" && loss != "cosine" && loss != "infonce")
        throw Error("param loss", "unknown loss '" + loss + "'", "use mse, cosine or infonce");
      if (p.get_int("epochs") < 1) throw Error("param epochs", "must be at least 1", "set `epochs:` to e.g. 20");
      if (p.get_int("batch_size") < 1) throw Error("param batch_size", "must be at least 1", "set `batch_size:` to e.g. 32");
      if (p.get_float("lr") <= 0) throw Error("param lr", "must be positive", "set `lr:` to e.g. 0.0005");
      if (p.get_int("hidden") < 0 || p.get_int("layers") < 0)
        throw Error("param hidden/layers", "must not be negative", "use 0 for the architecture's default");
      if (p.get_float("temperature") <= 0) throw Error("param temperature", "must be positive", "set e.g. 0.07");
      if (p.get_int("world_size") < 1) throw Error("param world_size", "must be at least 1", "use 1 for one process");
      if (p.get_int("world_size") > 1 && loss == "infonce")
        throw Error("param world_size", "infonce needs the whole batch's negatives in one process",
                    "use loss mse or cosine with world_size > 1");
    };
    registry.add(std::move(info));
  }
  {
    StageInfo info;
    info.type = "lvm.predict";
    info.version = 2;   // 2: the fast inference path (float32 outputs differ from 1 by ~1e-6)
    info.kind = StageKind::Map;
    info.summary = "Predicts the next vector of every window with a trained model (side input: a lvm.train stage); "
                   "optional K-step autoregressive roll-outs; predictions in vectors.npy (row i = window i)";
    info.vectors_file = true;
    info.params = {
        {"rollout_steps", ParamType::Int, "0",
         "K > 0: also roll each window out K steps on the model's own predictions (rollout.npy) and "
         "report degeneration"},
        kInferenceDTypeParam,
    };
    info.min_inputs = 2;
    info.max_inputs = 2;
    info.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<PredictStage>(p); };
    info.validate = [](const Params& p) {
      if (p.get_int("rollout_steps") < 0) throw Error("param rollout_steps", "must not be negative", "use 0 to disable");
      parse_lvm_dtype(p.get_string("dtype"), "param dtype");
    };
    registry.add(std::move(info));
  }
  {
    StageInfo info;
    info.type = "lvm.eval";
    info.version = 3;   // 2: gain over the strongest baseline, verdict column; 3: the fast inference path
    info.kind = StageKind::Barrier;
    info.summary = "Validation cosine / MSE of every lvm.train input and the baselines side by side, "
                   "gain over the strongest baseline with a beats / noise / WORSE verdict, params, latency";
    info.params = {{"seed", ParamType::Int, "42", "seed of the random baseline"}, kInferenceDTypeParam};
    info.validate = [](const Params& p) { parse_lvm_dtype(p.get_string("dtype"), "param dtype"); };
    info.min_inputs = 1;
    info.max_inputs = SIZE_MAX;
    info.make = [](const Params& p) -> std::unique_ptr<Stage> { return std::make_unique<EvalStage>(p); };
    registry.add(std::move(info));
  }
}

}  // namespace lvmflow

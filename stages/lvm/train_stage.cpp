// lvm.train (barrier): seq.window windows -> one trained model (model.safetensors + model.json).
#include <cstdio>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "stages/lvm/baselines.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "stages/lvm/data_parallel.hpp"
#include "stages/lvm/lvm_stages.hpp"
#include "stages/lvm/trainer.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

constexpr const char* kEncoderFile = "encoder.json";

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

}  // namespace

void add_lvm_train_stage(StageRegistry& registry) {
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

}  // namespace lvmflow

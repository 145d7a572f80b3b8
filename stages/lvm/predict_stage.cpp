// lvm.predict (map): the next vector of every window from a trained model, optional roll-outs.
#include <map>
#include <mutex>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/lvm/baselines.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "stages/lvm/lvm_stages.hpp"
#include "stages/lvm/trainer.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

void add_lvm_predict_stage(StageRegistry& registry) {
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

}  // namespace lvmflow

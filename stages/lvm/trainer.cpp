#include "stages/lvm/trainer.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <random>

#include "pipeline/error.hpp"
#include "stages/lvm/checkpoint.hpp"
#include "stages/lvm/fused_adamw.hpp"
#include "stages/lvm/data_parallel.hpp"

namespace lvmflow {
namespace F = torch::nn::functional;

torch::Tensor lvm_loss(const std::string& loss, const torch::Tensor& pred, const torch::Tensor& target,
                       double temperature) {
  if (loss == "mse") return F::mse_loss(pred, target);
  if (loss == "cosine") return 1.0 - F::cosine_similarity(pred, target, F::CosineSimilarityFuncOptions().dim(-1)).mean();
  if (loss == "infonce") {
    // In-batch negatives: every other target in the batch is a wrong answer.
    auto logits = pred.matmul(F::normalize(target, F::NormalizeFuncOptions().dim(-1)).t()) / temperature;
    return F::cross_entropy(logits, torch::arange(pred.size(0), torch::kLong));
  }
  throw Error("loss", "unknown loss '" + loss + "'", "use mse, cosine or infonce");
}

double PlateauScheduler::step(double value, double lr) {
  if (value < best * (1.0 - 1e-4)) {
    best = value;
    bad_epochs = 0;
  } else if (++bad_epochs > patience) {
    bad_epochs = 0;
    return lr * factor;
  }
  return lr;
}

void gather_windows(const WindowData& data, const std::vector<std::size_t>& rows, std::size_t begin, std::size_t end,
                    torch::Tensor* contexts, torch::Tensor* targets) {
  const auto n = static_cast<std::int64_t>(data.context), d = static_cast<std::int64_t>(data.dim);
  const auto b = static_cast<std::int64_t>(end - begin);
  *contexts = torch::empty({b, n, d});
  *targets = torch::empty({b, d});
  float* c = contexts->data_ptr<float>();
  float* t = targets->data_ptr<float>();
  for (std::size_t i = begin; i < end; ++i) {
    std::memcpy(c + (i - begin) * n * d, data.context_of(rows[i]), sizeof(float) * n * d);
    std::memcpy(t + (i - begin) * d, data.target_of(rows[i]), sizeof(float) * d);
  }
  data.vectors->note_reads((end - begin) * (data.context + 1));
}

namespace {

// Torch draws dropout masks and initial weights from one process-wide generator. Several
// trainings may run at once in a pipeline, so each keeps its own generator state and swaps it
// in, under a lock, only around the calls that draw random numbers; the result then depends
// on the seed alone, not on what ran beside it.
class TrainingRng {
 public:
  explicit TrainingRng(std::uint64_t seed) {
    std::lock_guard lock(global_mutex());
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard gen_lock(gen.mutex());
    auto saved = gen.get_state();
    gen.set_current_seed(seed);
    state_ = gen.get_state();
    gen.set_state(saved);
  }
  template <class Fn>
  auto run(Fn&& fn) {
    std::lock_guard lock(global_mutex());
    auto gen = at::detail::getDefaultCPUGenerator();
    torch::Tensor saved;
    {
      std::lock_guard gen_lock(gen.mutex());
      saved = gen.get_state();
      gen.set_state(state_);
    }
    struct Restore {
      at::Generator& gen;
      torch::Tensor& state;
      torch::Tensor& saved;
      ~Restore() {
        std::lock_guard gen_lock(gen.mutex());
        state = gen.get_state();
        gen.set_state(saved);
      }
    } restore{gen, state_, saved};
    return fn();
  }
  torch::Tensor& state() { return state_; }

 private:
  static std::mutex& global_mutex() {
    static std::mutex m;
    return m;
  }
  torch::Tensor state_;
};

std::vector<std::size_t> shuffled(std::vector<std::size_t> rows, std::uint64_t seed, std::int64_t epoch) {
  // Own Fisher-Yates over mt19937_64: std::shuffle's draws are not specified by the standard.
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<std::uint64_t>(epoch));
  for (std::size_t i = rows.size(); i > 1; --i) std::swap(rows[i - 1], rows[rng() % i]);
  return rows;
}

struct Evaluation {
  double loss = 0, cosine = 0, mse = 0;
};

Evaluation evaluate(LvmModel& model, const WindowData& data, const std::vector<std::size_t>& rows,
                    const TrainSettings& s) {
  torch::NoGradGuard no_grad;
  model.eval();
  Evaluation e;
  constexpr std::size_t kChunk = 256;
  for (std::size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const std::size_t end = std::min(rows.size(), begin + kChunk);
    torch::Tensor contexts, targets;
    gather_windows(data, rows, begin, end, &contexts, &targets);
    auto pred = model.forward(contexts);
    const double b = static_cast<double>(end - begin);
    e.loss += lvm_loss(s.loss, pred, targets, s.temperature).item<double>() * b;
    e.cosine += F::cosine_similarity(pred, targets, F::CosineSimilarityFuncOptions().dim(-1)).sum().item<double>();
    e.mse += F::mse_loss(pred, targets).item<double>() * b;
  }
  const double n = static_cast<double>(rows.size());
  e.loss /= n, e.cosine /= n, e.mse /= n;
  return e;
}

using NamedTensors = std::map<std::string, torch::Tensor>;

NamedTensors clone_state(const LvmModel& model) {
  NamedTensors out;
  for (const auto& [name, t] : model_state(model)) out[name] = t.clone();
  return out;
}

// Archive keys may not contain dots.
std::string archive_key(std::string name) {
  for (char& c : name)
    if (c == '.') c = '|';
  return name;
}

constexpr const char* kStateFile = "state.pt";
constexpr std::int64_t kHistoryColumns = 7;

struct ResumeState {
  std::int64_t epoch = 0;
  double lr = 0;
  PlateauScheduler scheduler;
  std::int64_t best_epoch = 0;
  double best_val_cosine = -2, best_val_mse = 0;
  std::vector<EpochRecord> history;
};

void save_resume(const std::filesystem::path& dir, LvmModel& model, torch::optim::Optimizer& optimizer,
                 TrainingRng& rng, const NamedTensors& best, const ResumeState& s) {
  std::filesystem::create_directories(dir);
  torch::serialize::OutputArchive archive;
  archive.write("scalars", torch::tensor({double(s.epoch), s.lr, s.scheduler.best, double(s.scheduler.bad_epochs),
                                          double(s.best_epoch), s.best_val_cosine, s.best_val_mse},
                                         torch::kFloat64));
  auto history = torch::zeros({std::int64_t(s.history.size()), kHistoryColumns}, torch::kFloat64);
  for (std::size_t i = 0; i < s.history.size(); ++i) {
    const auto& h = s.history[i];
    double row[kHistoryColumns] = {double(h.epoch), h.train_loss, h.val_loss, h.val_cosine, h.val_mse, h.lr, h.seconds};
    for (std::int64_t c = 0; c < kHistoryColumns; ++c) history[i][c] = row[c];
  }
  archive.write("history", history);
  archive.write("rng", rng.state());
  torch::serialize::OutputArchive model_archive, best_archive, optimizer_archive;
  model.save(model_archive);
  for (const auto& [name, t] : best) best_archive.write(archive_key(name), t);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("best", best_archive);
  archive.write("optimizer", optimizer_archive);
  // Written beside, then renamed: an interruption mid-write leaves the previous epoch's state.
  const auto tmp = dir / (std::string(kStateFile) + ".tmp");
  archive.save_to(tmp.string());
  std::filesystem::rename(tmp, dir / kStateFile);
}

bool load_resume(const std::filesystem::path& dir, LvmModel& model, torch::optim::Optimizer& optimizer,
                 TrainingRng& rng, NamedTensors* best, ResumeState* s) {
  const auto path = dir / kStateFile;
  if (!std::filesystem::exists(path)) return false;
  torch::serialize::InputArchive archive;
  archive.load_from(path.string());
  torch::Tensor scalars, history;
  archive.read("scalars", scalars);
  archive.read("history", history);
  archive.read("rng", rng.state());
  auto sc = scalars.accessor<double, 1>();
  s->epoch = std::int64_t(sc[0]);
  s->lr = sc[1];
  s->scheduler.best = sc[2];
  s->scheduler.bad_epochs = std::int64_t(sc[3]);
  s->best_epoch = std::int64_t(sc[4]);
  s->best_val_cosine = sc[5];
  s->best_val_mse = sc[6];
  auto h = history.accessor<double, 2>();
  s->history.clear();
  for (std::int64_t i = 0; i < history.size(0); ++i)
    s->history.push_back({std::int64_t(h[i][0]), h[i][1], h[i][2], h[i][3], h[i][4], h[i][5], h[i][6]});
  torch::serialize::InputArchive model_archive, best_archive, optimizer_archive;
  archive.read("model", model_archive);
  archive.read("best", best_archive);
  archive.read("optimizer", optimizer_archive);
  model.load(model_archive);
  best->clear();
  for (const auto& [name, t] : model_state(model)) {
    torch::Tensor value;
    best_archive.read(archive_key(name), value);
    (*best)[name] = value;
  }
  optimizer.load(optimizer_archive);
  return true;
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

}  // namespace

TrainResult train_model(const WindowData& data, const TrainSettings& s, const std::filesystem::path& resume_dir,
                        StageContext& ctx, DataParallelGroup* ranks) {
  const std::string where = "stage '" + ctx.stage_name() + "' (lvm.train, " + s.arch + ")";
  if (s.epochs < 1 || s.batch_size < 1)
    throw Error(where, "epochs and batch_size must be at least 1", "set `epochs:` and `batch_size:`");
  const auto train_rows = data.rows_in_split(0);
  const auto val_rows = data.rows_in_split(1);
  if (train_rows.empty())
    throw Error(where, "no training windows", "give seq.window more (or longer) articles, or lower its val_fraction");

  ModelConfig config = default_model_config(s.arch, std::int64_t(data.dim), std::int64_t(data.context), s.hidden, s.layers);
  TrainingRng rng(s.seed);
  auto model = rng.run([&] { return make_model(config); });
  FusedAdamW optimizer(model->parameters(), torch::optim::AdamWOptions(s.lr).weight_decay(s.weight_decay), s.grad_clip);

  ResumeState state;
  state.lr = s.lr;
  state.scheduler.patience = s.patience;
  state.scheduler.factor = s.factor;
  NamedTensors best;
  TrainResult result;
  if (!resume_dir.empty()) {
    try {
      if (load_resume(resume_dir, *model, optimizer, rng, &best, &state)) {
        state.scheduler.patience = s.patience;
        state.scheduler.factor = s.factor;
        set_learning_rate(optimizer, state.lr);
        result.resumed_from_epoch = state.epoch;
        ctx.log(s.arch + ": resuming after epoch " + std::to_string(state.epoch) + " from " + resume_dir.string());
        // The interrupted run's metrics belong to a failed run; repeat them for this one.
        for (const auto& h : state.history) {
          ctx.metric("train_loss", h.train_loss, h.epoch, s.arch);
          if (!val_rows.empty()) {
            ctx.metric("val_loss", h.val_loss, h.epoch, s.arch);
            ctx.metric("val_cosine", h.val_cosine, h.epoch, s.arch);
          }
          ctx.metric("lr", h.lr, h.epoch, s.arch);
        }
      }
    } catch (const c10::Error& e) {
      // A state file torn by something other than our rename (disk full, manual edits):
      // drop it and train from the seed, which gives the same result as never having had it.
      ctx.log(s.arch + ": resume state in " + resume_dir.string() + " is unreadable, starting over (" +
              e.what_without_backtrace() + ")");
      std::filesystem::remove(resume_dir / kStateFile);
      return train_model(data, s, resume_dir, ctx, ranks);
    }
  }

  double train_seconds = 0;
  std::size_t samples = 0;
  const auto params = model->parameters();
  for (std::int64_t epoch = state.epoch + 1; epoch <= s.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    model->train();
    const auto order = shuffled(train_rows, s.seed, epoch);
    double loss_sum = 0;
    for (std::size_t begin = 0; begin < order.size(); begin += std::size_t(s.batch_size)) {
      const std::size_t end = std::min(order.size(), begin + std::size_t(s.batch_size));
      const auto [first, last] = ranks ? ranks->share(begin, end) : std::pair{begin, end};
      const bool cancelled = ctx.cancelled();
      if (cancelled && !ranks) throw Error(where, "cancelled during epoch " + std::to_string(epoch));
      optimizer.release_grads();
      if (last > first && !cancelled) {
        torch::Tensor contexts, targets;
        gather_windows(data, order, first, last, &contexts, &targets);
        auto pred = rng.run([&] { return model->forward(contexts); });
        auto loss = lvm_loss(s.loss, pred, targets, s.temperature);
        // A rank's mean loss weighted by its share of the batch: the ranks' gradients then sum
        // to the gradient of the whole batch's mean loss.
        (ranks ? loss * (double(last - first) / double(end - begin)) : loss).backward();
        loss_sum += loss.item<double>() * double(last - first);
      }
      if (ranks && ranks->sum_gradients(params, cancelled))
        throw Error(where, "cancelled during epoch " + std::to_string(epoch));
      optimizer.step();   // clips the gradients to s.grad_clip first
    }
    if (ranks) {
      auto total = torch::tensor({loss_sum}, torch::kFloat64);
      ranks->sum(total);
      loss_sum = total.item<double>();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    train_seconds += seconds;
    samples += order.size();

    EpochRecord rec;
    rec.epoch = epoch;
    rec.train_loss = loss_sum / double(order.size());
    rec.lr = state.lr;
    rec.seconds = seconds;
    if (!val_rows.empty()) {
      // Rank 0 validates and tells the others, so every rank steps the scheduler alike.
      Evaluation e;
      if (!ranks || ranks->rank() == 0) e = evaluate(*model, data, val_rows, s);
      if (ranks) {
        auto scores = torch::tensor({e.loss, e.cosine, e.mse}, torch::kFloat64);
        ranks->broadcast(scores, 0);
        e = {scores[0].item<double>(), scores[1].item<double>(), scores[2].item<double>()};
      }
      rec.val_loss = e.loss, rec.val_cosine = e.cosine, rec.val_mse = e.mse;
    }
    ctx.metric("train_loss", rec.train_loss, epoch, s.arch);
    if (!val_rows.empty()) {
      ctx.metric("val_loss", rec.val_loss, epoch, s.arch);
      ctx.metric("val_cosine", rec.val_cosine, epoch, s.arch);
    }
    ctx.metric("lr", rec.lr, epoch, s.arch);
    char line[200];
    std::snprintf(line, sizeof line, "%s epoch %lld/%lld: train loss %.6f, val loss %.6f, val cosine %.4f, lr %.2e, %.1fs",
                  s.arch.c_str(), static_cast<long long>(epoch), static_cast<long long>(s.epochs), rec.train_loss,
                  rec.val_loss, rec.val_cosine, rec.lr, seconds);
    ctx.log(line);

    // Without validation windows the last epoch counts as the best.
    if (val_rows.empty() || rec.val_cosine > state.best_val_cosine) {
      state.best_epoch = epoch;
      state.best_val_cosine = rec.val_cosine;
      state.best_val_mse = rec.val_mse;
      best = clone_state(*model);
    }
    state.lr = state.scheduler.step(val_rows.empty() ? rec.train_loss : rec.val_loss, state.lr);
    set_learning_rate(optimizer, state.lr);
    state.epoch = epoch;
    state.history.push_back(rec);
    if (!resume_dir.empty()) save_resume(resume_dir, *model, optimizer, rng, best, state);
  }

  if (!best.empty()) load_model_state(*model, best, where);
  model->eval();
  result.model = model;
  result.history = state.history;
  result.best_epoch = state.best_epoch;
  result.best_val_cosine = state.best_val_cosine;
  result.best_val_mse = state.best_val_mse;
  result.train_samples_per_s = train_seconds > 0 ? double(samples) / train_seconds : 0;
  return result;
}

}  // namespace lvmflow

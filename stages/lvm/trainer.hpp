#pragma once
// The lvm.train loop: AdamW, gradient clipping, ReduceLROnPlateau, best-by-val-cosine, and
// resumable state. Includes torch (via lvm_models.hpp).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/stage.hpp"
#include "stages/lvm/lvm_models.hpp"
#include "stages/lvm/window_data.hpp"

namespace lvmflow {

class DataParallelGroup;

struct TrainSettings {
  std::string arch = "amn";
  std::int64_t hidden = 0;   // 0: the architecture's default width
  std::int64_t layers = 0;   // 0: the architecture's default depth
  std::int64_t epochs = 20;
  std::int64_t batch_size = 32;
  double lr = 5e-4;
  double weight_decay = 0.01;
  double grad_clip = 1.0;     // max global L2 norm of the gradients; <= 0 disables
  std::int64_t patience = 3;  // ReduceLROnPlateau on the validation loss
  double factor = 0.5;
  std::string loss = "mse";   // mse | cosine | infonce
  double temperature = 0.07;  // infonce only
  std::uint64_t seed = 42;
};

struct EpochRecord {
  std::int64_t epoch = 0;     // 1-based
  double train_loss = 0, val_loss = 0, val_cosine = 0, val_mse = 0, lr = 0, seconds = 0;
};

struct TrainResult {
  std::shared_ptr<LvmModel> model;   // the best epoch's weights, eval mode
  std::vector<EpochRecord> history;
  std::int64_t best_epoch = 0;
  double best_val_cosine = 0, best_val_mse = 0;
  std::int64_t resumed_from_epoch = 0;   // 0: started fresh
  double train_samples_per_s = 0;
};

// Loss of a batch of L2-normalised predictions against targets.
torch::Tensor lvm_loss(const std::string& loss, const torch::Tensor& pred, const torch::Tensor& target,
                       double temperature);

// ReduceLROnPlateau in "min" mode with PyTorch's defaults (relative threshold 1e-4, no cooldown).
struct PlateauScheduler {
  std::int64_t patience = 3;
  double factor = 0.5;
  double best = std::numeric_limits<double>::infinity();
  std::int64_t bad_epochs = 0;
  // Returns the new learning rate after an epoch whose monitored loss was `value`.
  double step(double value, double lr);
};

// Stacks rows of `data` into [B, N, D] contexts and [B, D] targets.
void gather_windows(const WindowData& data, const std::vector<std::size_t>& rows, std::size_t begin, std::size_t end,
                    torch::Tensor* contexts, torch::Tensor* targets);

// Trains one model on the train split, validating on the validation split after each epoch.
// Reports per-epoch metrics through ctx (label = arch), checks ctx.cancelled() between batches
// (then throws lvmflow::Error). With a non-empty `resume_dir`, the state after every epoch is
// kept there, and a run that finds state there continues after its last finished epoch.
// With `ranks` (data-parallel, data_parallel.hpp) this process trains its share of every batch
// and rank 0 validates; every rank must call this with the same data and settings.
TrainResult train_model(const WindowData& data, const TrainSettings& settings, const std::filesystem::path& resume_dir,
                        StageContext& ctx, DataParallelGroup* ranks = nullptr);

}  // namespace lvmflow

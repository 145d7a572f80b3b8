#pragma once
// The four next-vector models as libtorch modules. Parameter names are the ones the same
// model written with torch.nn in Python has in its state_dict (tools/bench/lvm/lvm_models.py
// defines that peer), so a checkpoint written here loads there with strict=True.
// Includes <torch/torch.h>: include this only from the few torch translation units.
#include <torch/torch.h>

#include <memory>

#include "stages/lvm/model_config.hpp"

namespace lvmflow {

class LvmModel : public torch::nn::Module {
 public:
  explicit LvmModel(ModelConfig config) : config_(std::move(config)) {}
  // context [B, N, D] -> next-vector prediction [B, D], L2-normalised. Thread-safe in eval mode.
  virtual torch::Tensor forward(const torch::Tensor& context) = 0;
  const ModelConfig& config() const { return config_; }
  std::int64_t parameter_count() const;

 protected:
  ModelConfig config_;
};

// Sets torch's intra-op threads and, when torch's BLAS is OpenBLAS (Debian's libtorch), the
// OpenBLAS thread pool too: it is separate from torch's and would otherwise keep using every core.
void set_compute_threads(int threads);

// Builds a freshly initialised model (torch's global generator decides the initial weights,
// so seed it first for reproducible runs). Throws lvmflow::Error for a bad config.
std::shared_ptr<LvmModel> make_model(const ModelConfig& config);

}  // namespace lvmflow

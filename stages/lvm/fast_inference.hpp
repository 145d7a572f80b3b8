#pragma once
// Inference-only forward passes of the four LVMs (lvm_models.cpp) over raw float buffers,
// with every weight matrix prepacked once (packed_linear.hpp) in float32, bfloat16 or int8.
//
// Same functions as LvmModel::forward in eval mode, organised for batch 1: the input
// projections of all context steps are one pass over W_ih, each recurrent step is one pass
// over all gates' W_hh, and the gate / norm / attention arithmetic runs in plain loops on
// the step's few hundred floats instead of a dozen tensor ops. float32 matches the torch
// forward to ~1e-6; bfloat16 / int8 round only the weights (activations stay float32).
// Includes torch headers: only for the lvm family's torch translation units.
#include <torch/torch.h>

#include <memory>

#include "stages/lvm/lvm_models.hpp"
#include "stages/lvm/packed_linear.hpp"

namespace lvmflow {

class FastLvm {
 public:
  virtual ~FastLvm() = default;
  // contexts [batch, steps, dim] row-major float32 -> out [batch, dim], L2-normalised.
  // Thread-safe (each call uses its own scratch).
  virtual void predict(const float* contexts, std::size_t batch, std::size_t steps, float* out) const = 0;
  // The same on a [B, N, D] float32 tensor -> [B, D].
  torch::Tensor forward(const torch::Tensor& contexts) const;

  LvmDType dtype() const { return dtype_; }
  std::size_t dim() const { return dim_; }

 protected:
  FastLvm(LvmDType dtype, std::size_t dim) : dtype_(dtype), dim_(dim) {}
  LvmDType dtype_;
  std::size_t dim_;
};

// Packs `model`'s current weights (it can be freed afterwards). Throws lvmflow::Error for an
// architecture it does not know.
std::unique_ptr<FastLvm> make_fast_lvm(const LvmModel& model, LvmDType dtype);

}  // namespace lvmflow

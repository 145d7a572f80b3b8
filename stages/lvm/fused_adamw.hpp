#pragma once
// torch::optim::AdamW with its update done in one pass over each parameter, and the global
// gradient-norm clipping (torch::nn::utils::clip_grad_norm_) folded into that pass.
//
// Why: torch's AdamW step runs ~8 separate tensor ops per parameter (weight decay, two moment
// updates, sqrt, divide, add eps, addcdiv) plus a temporary, and clipping two more passes;
// for the 5-18M-parameter LVMs each pass streams 20-70 MB, so at batch 32 the optimizer took
// about a quarter of a training step. The fused loop reads p, g, m, v once and writes p, m, v
// once. The state (step, exp_avg, exp_avg_sq) is AdamW's own, so save()/load() and resume
// files are unchanged. Same arithmetic as torch's step; results agree to float rounding.
// Includes torch: only for the lvm family's torch translation units.
#include <torch/torch.h>

namespace lvmflow {

class FusedAdamW : public torch::optim::AdamW {
 public:
  // max_grad_norm > 0: scale the gradients by min(1, max_grad_norm / (norm + 1e-6)) first,
  // norm = the L2 norm of all gradients together (what clip_grad_norm_ does).
  FusedAdamW(const std::vector<torch::Tensor>& params, const torch::optim::AdamWOptions& options, double max_grad_norm);

  torch::Tensor step(LossClosure closure = nullptr) override;

  // Drops the gradients instead of zeroing them (zero_grad() writes zeros, then backward adds
  // the new gradient to them: two passes over every parameter); backward then stores its
  // gradient tensors directly. Call it where zero_grad() would go.
  void release_grads();

 private:
  double max_grad_norm_;
};

}  // namespace lvmflow

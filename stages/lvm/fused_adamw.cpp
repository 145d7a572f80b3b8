#include "stages/lvm/fused_adamw.hpp"

#include <ATen/Parallel.h>

#include <cmath>

namespace lvmflow {
namespace {

struct AdamWStep {
  float decay;          // 1 - lr * weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bias_correction2_sqrt, eps;
  float neg_step_size;  // -lr / bias_correction1
  float grad_scale;     // clipping coefficient (1 = none)
};

// torch::optim::AdamW::step's arithmetic for one parameter, in its order, element by element.
__attribute__((target_clones("avx512f", "default"))) void adamw_update(float* p, const float* g, float* m, float* v,
                                                                       std::int64_t n, const AdamWStep& s) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float grad = g[i] * s.grad_scale;
    const float param = p[i] * s.decay;
    const float exp_avg = m[i] * s.beta1 + grad * s.one_minus_beta1;
    const float exp_avg_sq = v[i] * s.beta2 + s.one_minus_beta2 * grad * grad;
    const float denom = std::sqrt(exp_avg_sq) / s.bias_correction2_sqrt + s.eps;
    p[i] = param + s.neg_step_size * exp_avg / denom;
    m[i] = exp_avg;
    v[i] = exp_avg_sq;
  }
}

__attribute__((target_clones("avx512f", "default"))) double sum_of_squares(const float* g, std::int64_t n) {
  // Blocks of float partial sums, added up in double: the clipping norm of millions of values.
  double total = 0;
  constexpr std::int64_t kBlock = 4096;
  for (std::int64_t begin = 0; begin < n; begin += kBlock) {
    float partial = 0;
    const std::int64_t end = std::min(n, begin + kBlock);
    for (std::int64_t i = begin; i < end; ++i) partial += g[i] * g[i];
    total += partial;
  }
  return total;
}

bool fusable(const torch::Tensor& p) {
  const auto& g = p.grad();
  return p.scalar_type() == torch::kFloat && p.is_contiguous() && !g.is_sparse() && g.scalar_type() == torch::kFloat &&
         g.is_contiguous();
}

}  // namespace

FusedAdamW::FusedAdamW(const std::vector<torch::Tensor>& params, const torch::optim::AdamWOptions& options,
                       double max_grad_norm)
    : torch::optim::AdamW(params, options), max_grad_norm_(max_grad_norm) {}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  bool all_fusable = true;
  std::vector<torch::Tensor> with_grad;
  for (auto& group : param_groups_) {
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) all_fusable = false;
    for (auto& p : group.params())
      if (p.grad().defined()) {
        with_grad.push_back(p);
        all_fusable = all_fusable && fusable(p);
      }
  }
  double grad_scale = 1.0;
  if (max_grad_norm_ > 0) {
    double squares = 0;
    for (const auto& p : with_grad)
      squares += fusable(p) ? sum_of_squares(p.grad().data_ptr<float>(), p.numel()) : p.grad().to(torch::kDouble).pow(2).sum().item<double>();
    grad_scale = std::min(1.0, max_grad_norm_ / (std::sqrt(squares) + 1e-6));
  }
  if (!all_fusable) {   // amsgrad, sparse or non-contiguous: torch's own step on clipped gradients
    if (grad_scale < 1.0)
      for (auto& p : with_grad) p.grad().mul_(grad_scale);
    torch::optim::AdamW::step();
    return loss;
  }
  for (auto& group : param_groups_) {
    const auto& options = static_cast<const torch::optim::AdamWOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      auto found = state_.find(key);
      if (found == state_.end()) {
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        found = state_.emplace(key, std::move(state)).first;
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias_correction1 = 1 - std::pow(beta1, double(state.step()));
      const double bias_correction2 = 1 - std::pow(beta2, double(state.step()));
      const AdamWStep s{float(1 - options.lr() * options.weight_decay()),
                        float(beta1), float(1 - beta1), float(beta2), float(1 - beta2),
                        float(std::sqrt(bias_correction2)), float(options.eps()),
                        float(-options.lr() / bias_correction1), float(grad_scale)};
      float* param = p.data_ptr<float>();
      const float* grad = p.grad().data_ptr<float>();
      float* exp_avg = state.exp_avg().data_ptr<float>();
      float* exp_avg_sq = state.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), 1 << 16, [&](std::int64_t begin, std::int64_t end) {
        adamw_update(param + begin, grad + begin, exp_avg + begin, exp_avg_sq + begin, end - begin, s);
      });
    }
  }
  return loss;
}

void FusedAdamW::release_grads() {
  for (auto& group : param_groups_)
    for (auto& p : group.params()) p.mutable_grad().reset();
}

}  // namespace lvmflow

#include <gtest/gtest.h>

#include "stages/lvm/fused_adamw.hpp"

namespace lvmflow {
namespace {

// Two copies of the same parameters, one trained with torch's AdamW + clip_grad_norm_, the
// other with FusedAdamW, on the same gradients: they must stay together step after step.
void expect_same_training(double max_grad_norm, double grad_magnitude) {
  torch::manual_seed(1);
  std::vector<torch::Tensor> reference = {torch::randn({300, 7}), torch::randn({5}), torch::randn({2, 3, 4})};
  std::vector<torch::Tensor> fused;
  for (auto& p : reference) {
    fused.push_back(p.clone().requires_grad_(true));
    p.requires_grad_(true);
  }
  const auto options = torch::optim::AdamWOptions(0.01).weight_decay(0.05);
  torch::optim::AdamW torch_adamw(reference, options);
  FusedAdamW fused_adamw(fused, options, max_grad_norm);
  for (int step = 0; step < 5; ++step) {
    for (std::size_t i = 0; i < reference.size(); ++i) {
      auto g = torch::randn_like(reference[i]) * grad_magnitude;
      reference[i].mutable_grad() = g.clone();
      fused[i].mutable_grad() = g.clone();
    }
    if (max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(reference, max_grad_norm);
    torch_adamw.step();
    fused_adamw.step();
    for (std::size_t i = 0; i < reference.size(); ++i)
      ASSERT_LT((reference[i] - fused[i]).abs().max().item<float>(), 2e-6) << "step " << step << " tensor " << i;
  }
  // Same state layout: the fused optimizer's state loads into torch's AdamW and back.
  torch::serialize::OutputArchive archive;
  fused_adamw.save(archive);
  std::stringstream buffer;
  archive.save_to(buffer);
  torch::serialize::InputArchive input;
  input.load_from(buffer);
  torch_adamw.load(input);
}

TEST(FusedAdamW, MatchesTorchAdamWWithClipping) { expect_same_training(1.0, 3.0); }       // clipping active
TEST(FusedAdamW, MatchesTorchAdamWWithoutClipping) { expect_same_training(0.0, 1.0); }
TEST(FusedAdamW, MatchesTorchAdamWWhenTheNormIsUnderTheLimit) { expect_same_training(1e6, 1.0); }

}  // namespace
}  // namespace lvmflow

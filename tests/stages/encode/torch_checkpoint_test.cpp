// pytorch_model.bin through lvmflow's restricted unpickler: a state_dict() checkpoint loads
// exactly; damaged pickles (with valid zip CRCs) fail with lvmflow::Error, never a crash;
// pickles naming other Python globals are refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "pipeline/error.hpp"
#include "stages/common/t5/torch_checkpoint.hpp"
#include "tests/stages/common/python_helpers.hpp"
#include "tests/stages/encode/tiny_models.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using lvmflow::testing::tiny_models;

TEST(TorchCheckpoint, LoadsStateDictWithTiedWeights) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  auto sd = load_torch_state_dict(tiny_models() / "gelu_bin" / "pytorch_model.bin");
  ASSERT_TRUE(sd.count("shared.weight"));
  ASSERT_TRUE(sd.count("encoder.embed_tokens.weight"));
  EXPECT_TRUE(at::equal(sd["shared.weight"], sd["encoder.embed_tokens.weight"]));
  EXPECT_EQ(sd["shared.weight"].sizes(), at::IntArrayRef({100, 32}));
  EXPECT_EQ(sd["encoder.block.1.layer.1.DenseReluDense.wi_0.weight"].sizes(), at::IntArrayRef({48, 32}));
  EXPECT_EQ(sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].scalar_type(), at::kFloat);
  auto dense = load_torch_state_dict(tiny_models() / "gelu_bin" / "2_Dense" / "pytorch_model.bin");
  EXPECT_EQ(dense.size(), 1u);
  EXPECT_EQ(dense["linear.weight"].sizes(), at::IntArrayRef({24, 32}));
}

TEST(TorchCheckpoint, DamagedPicklesFailCleanly) {
  LVMFLOW_REQUIRE_TINY_MODELS();
  const fs::path dir = lvmflow::testing::make_temp_dir("lvmflow-damaged-bin");
  ASSERT_EQ(lvmflow::testing::run_fixture_script(
                "damage_checkpoint.py",
                (tiny_models() / "gelu_bin" / "2_Dense" / "pytorch_model.bin").string() + " " + dir.string() + " 120 7"),
            0);
  int errors = 0;
  for (int i = 0; i < 120; ++i) {
    const fs::path p = dir / ("damaged_" + std::to_string(i) + ".bin");
    try {
      load_torch_state_dict(p);
    } catch (const Error& e) {
      ++errors;
      EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
    }
  }
  EXPECT_GT(errors, 30);
  fs::remove_all(dir);
}

TEST(TorchCheckpoint, RefusesForeignGlobals) {
  const fs::path dir = lvmflow::testing::make_temp_dir("lvmflow-evil-bin");
  const fs::path p = dir / "evil.bin";
  // A pickle that would call os.system when loaded by Python's unpickler.
  const std::string cmd = std::string(lvmflow::testing::python_exe()) +
                          " -c \"import torch, os\nclass E:\n  def __reduce__(self): return (os.system, ('true',))\n"
                          "torch.save({'w': torch.zeros(2), 'x': E()}, '" + p.string() + "')\"";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "/usr/bin/python3 with torch not available";
  try {
    load_torch_state_dict(p);
    FAIL() << "a pickle naming os.system was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refusing Python global"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lvmflow

// The libtorch vec2text models against the independent Python reference
// (tools/fixtures/vec2text_reference.py, float64): greedy tokens identical, teacher-forced
// logits close, beam search hypotheses and scores equal; loader errors name the tensor.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <fstream>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/common/safetensors.hpp"
#include "stages/decode/t5_generate.hpp"
#include "stages/decode/vec2text_models.hpp"
#include "tests/stages/decode/tiny_vec2text.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using testing::int_list;
using testing::tiny_vec2text;
using testing::vec2text_reference;

at::Tensor load_npy(const fs::path& p) {
  NpyArray a = read_npy(p);
  return at::tensor(a.data, at::kFloat).view(a.shape);
}

at::Tensor targets() { return load_npy(tiny_vec2text() / "targets.npy"); }

at::Tensor token_tensor(const Json& rows) {
  std::vector<std::int64_t> flat;
  std::int64_t n = 0, len = 0;
  for (const Json& row : rows.as_array()) {
    auto ids = int_list(row);
    len = static_cast<std::int64_t>(ids.size());
    flat.insert(flat.end(), ids.begin(), ids.end());
    ++n;
  }
  return at::tensor(flat, at::kLong).view({n, len});
}

std::vector<std::vector<std::int64_t>> token_rows(const Json& rows) {
  std::vector<std::vector<std::int64_t>> out;
  for (const Json& row : rows.as_array()) out.push_back(int_list(row));
  return out;
}

void expect_close(const at::Tensor& actual, const at::Tensor& expected, double tol) {
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  const double diff = (actual - expected).abs().max().item<double>();
  EXPECT_LT(diff, tol * scale) << "max |diff| " << diff << " at scale " << scale;
}

void check_inversion(const std::string& name) {
  c10::InferenceMode guard;
  InversionModel model(tiny_vec2text() / name);
  const Json& ref = vec2text_reference();
  auto [x, mask] = model.encoder_inputs(targets());
  EXPECT_EQ(x.size(1), 4);   // num_repeat_tokens of the tiny config
  at::Tensor encoded = model.t5().encode(x, mask);
  const auto expected = token_rows(ref.at(name + "_greedy"));
  EXPECT_EQ(t5_greedy(model.t5(), encoded, mask, 12), expected);
  at::Tensor logits = model.t5().decoder_logits(encoded, mask, token_tensor(ref.at(name + "_greedy")));
  expect_close(logits, load_npy(tiny_vec2text() / ("ref_" + name + "_logits.npy")), 1e-4);
}

TEST(Vec2TextModel, InversionReluTiedSafetensorsMatchesReference) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  check_inversion("inversion");
}

TEST(Vec2TextModel, InversionGatedUntiedBinMatchesReference) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  check_inversion("inversion_gated");
}

void check_reduced_precision(ComputeDType dtype, double tolerance) {
  c10::InferenceMode guard;
  InversionModel exact(tiny_vec2text() / "inversion");
  InversionModel bf16(tiny_vec2text() / "inversion", dtype);
  at::Tensor ids = token_tensor(vec2text_reference().at("inversion_greedy"));
  auto logits = [&](const InversionModel& m) {
    auto [x, mask] = m.encoder_inputs(targets());
    return m.t5().decoder_logits(m.t5().encode(x, mask), mask, ids);
  };
  at::Tensor a = logits(exact), b = logits(bf16);
  EXPECT_EQ(b.scalar_type(), at::kFloat);
  const double rel = ((a - b).abs().max() / a.abs().max()).item<double>();
  EXPECT_GT(rel, 0.0);   // it really computed in reduced precision
  EXPECT_LT(rel, tolerance);
}

TEST(Vec2TextModel, BFloat16WeightsStayCloseToFloat32) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  check_reduced_precision(ComputeDType::BFloat16, 0.05);   // ~3 significant digits per weight
}

TEST(Vec2TextModel, Int8WeightsStayCloseToFloat32) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  check_reduced_precision(ComputeDType::Int8Dynamic, 0.1);   // per-channel weights, per-call activations
}

TEST(Vec2TextModel, ArchitectureIsReadOffTheTensors) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  InversionModel relu(tiny_vec2text() / "inversion");
  EXPECT_EQ(relu.t5().arch().describe(), "T5 d_model 24, 2+2 layers, 4 heads, d_ff 40, relu, vocab 100, tied LM head");
  EXPECT_EQ(relu.t5().arch().config.num_buckets, 8);
  EXPECT_EQ(relu.embedder_dim(), 32);
  InversionModel gated(tiny_vec2text() / "inversion_gated");
  EXPECT_EQ(gated.t5().arch().describe(),
            "T5 d_model 16, 2+2 layers, 4 heads, d_ff 24, gated-gelu, vocab 100, own lm_head");
}

TEST(Vec2TextModel, BeamSearchMatchesReference) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  c10::InferenceMode guard;
  InversionModel model(tiny_vec2text() / "inversion");
  auto [x, mask] = model.encoder_inputs(targets());
  auto beams = t5_beam_search(model.t5(), model.t5().encode(x, mask), mask, 3, 12, 3);
  const Json& ref = vec2text_reference().at("inversion_beam3");
  ASSERT_EQ(beams.size(), ref.as_array().size());
  for (std::size_t b = 0; b < beams.size(); ++b) {
    const auto& expected = ref.as_array()[b].as_array();
    ASSERT_EQ(beams[b].size(), expected.size()) << "row " << b;
    for (std::size_t k = 0; k < expected.size(); ++k) {
      EXPECT_EQ(beams[b][k].tokens, int_list(expected[k].at("tokens"))) << "row " << b << " beam " << k;
      EXPECT_NEAR(beams[b][k].score, expected[k].at("score").as_double(), 1e-4) << "row " << b << " beam " << k;
    }
  }
}

TEST(Vec2TextModel, CorrectorFromShardedBinMatchesReference) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  c10::InferenceMode guard;
  CorrectorModel corrector(tiny_vec2text() / "corrector");
  const Json& ref = vec2text_reference();
  // The hypothesis: the inversion model's greedy tokens and their (reference) re-embedding.
  at::Tensor hyp = token_tensor(ref.at("inversion_greedy"));
  std::vector<float> h;
  for (const Json& row : ref.at("hypothesis_embedding").as_array())
    for (const Json& v : row.as_array()) h.push_back(static_cast<float>(v.as_double()));
  at::Tensor hyp_emb = at::tensor(h, at::kFloat).view({hyp.size(0), -1});
  auto [x, mask] = corrector.encoder_inputs(targets(), hyp_emb, hyp, (hyp != 0).to(at::kLong));
  EXPECT_EQ(x.size(1), 4 + 3 * 4 + hyp.size(1));
  EXPECT_EQ(mask.narrow(1, 0, 16).sum().item<std::int64_t>(), 16 * hyp.size(0));
  at::Tensor encoded = corrector.t5().encode(x, mask);
  EXPECT_EQ(t5_greedy(corrector.t5(), encoded, mask, 12), token_rows(ref.at("corrector_greedy")));
  at::Tensor logits = corrector.t5().decoder_logits(encoded, mask, token_tensor(ref.at("corrector_greedy")));
  expect_close(logits, load_npy(tiny_vec2text() / "ref_corrector_logits.npy"), 1e-4);
}

// Rewrites <folder>/model.safetensors with `edit` applied to the tensor list.
void rewrite_safetensors(const fs::path& folder,
                         const std::function<void(std::vector<TensorToWrite>&, std::vector<std::vector<float>>&)>& edit) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<float>> data;
  {
    SafetensorsFile in(folder / "model.safetensors");
    for (const auto& [name, view] : in.tensors()) {
      data.push_back(view.to_float());
      tensors.push_back({name, DType::F32, view.shape, nullptr, 0});
    }
  }
  edit(tensors, data);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    tensors[i].data = data[i].data();
    tensors[i].nbytes = data[i].size() * sizeof(float);
  }
  write_safetensors(folder / "model.safetensors", tensors);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Vec2TextModel, MissingTensorIsNamed) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  fs::path copy = testing::copy_folder(tiny_vec2text() / "inversion", "lvmflow-v2t-missing");
  rewrite_safetensors(copy, [](auto& tensors, auto& data) {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == "encoder_decoder.decoder.block.1.layer.1.EncDecAttention.k.weight") {
        tensors.erase(tensors.begin() + static_cast<std::ptrdiff_t>(i));
        data.erase(data.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
  });
  const std::string msg = error_of([&] { InversionModel m(copy); });
  EXPECT_NE(msg.find("'encoder_decoder.decoder.block.1.layer.1.EncDecAttention.k.weight' is missing"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  fs::remove_all(copy);
}

TEST(Vec2TextModel, MisShapedTensorIsNamedWithBothShapes) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  fs::path copy = testing::copy_folder(tiny_vec2text() / "inversion", "lvmflow-v2t-shape");
  rewrite_safetensors(copy, [](auto& tensors, auto& data) {
    for (std::size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == "embedding_transform.3.weight") {   // [4*24, 32] -> [4*24 - 24, 32]
        tensors[i].shape[0] -= 24;
        data[i].resize(static_cast<std::size_t>(tensors[i].shape[0] * tensors[i].shape[1]));
      }
  });
  const std::string msg = error_of([&] { InversionModel m(copy); });
  EXPECT_NE(msg.find("'embedding_transform.3.weight' has shape [72, 32], expected [96, 32]"), std::string::npos) << msg;
  fs::remove_all(copy);
}

TEST(Vec2TextModel, ShardedIndexNamingAMissingShardFails) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  fs::path copy = testing::copy_folder(tiny_vec2text() / "corrector", "lvmflow-v2t-shard");
  fs::remove(copy / "pytorch_model-00002-of-00002.bin");
  const std::string msg = error_of([&] { CorrectorModel m(copy); });
  EXPECT_NE(msg.find("lists shard 'pytorch_model-00002-of-00002.bin'"), std::string::npos) << msg;
  fs::remove_all(copy);
}

TEST(Vec2TextModel, OlderCorrectorWithOneSharedTransformUsesItForAllThree) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  c10::InferenceMode guard;
  // Rewrite the corrector as a pre-split checkpoint: embedding_transform.* (from _1) only,
  // in a single model.safetensors.
  const CheckpointTensors original = CheckpointTensors::open(tiny_vec2text() / "corrector");
  fs::path copy = testing::make_temp_dir("lvmflow-v2t-shared");
  fs::copy_file(tiny_vec2text() / "corrector" / "config.json", copy / "config.json");
  std::vector<TensorToWrite> out;
  std::vector<at::Tensor> keep;
  for (const std::string& name : original.names_with_prefix("")) {
    std::string target = name;
    if (name.starts_with("embedding_transform_2") || name.starts_with("embedding_transform_3")) continue;
    if (name.starts_with("embedding_transform_1")) target = "embedding_transform" + name.substr(21);
    keep.push_back(original.get(name, original.shape(name)).contiguous());
    out.push_back({target, DType::F32, original.shape(name), keep.back().data_ptr<float>(),
                   static_cast<std::size_t>(keep.back().numel()) * sizeof(float)});
  }
  write_safetensors(copy / "model.safetensors", out);
  CorrectorModel shared(copy);
  // With the hypothesis embedding equal to the target, T1(e) and T3(h) coincide only when
  // both come from the one shared MLP.
  at::Tensor e = targets();
  at::Tensor ids = at::full({e.size(0), 3}, 5, at::kLong);
  auto [x, mask] = shared.encoder_inputs(e, e, ids, at::ones_like(ids));
  EXPECT_TRUE(at::allclose(x.narrow(1, 1, 4), x.narrow(1, 6, 4)));
  CorrectorModel split(tiny_vec2text() / "corrector");
  auto [y, mask2] = split.encoder_inputs(e, e, ids, at::ones_like(ids));
  EXPECT_FALSE(at::allclose(y.narrow(1, 1, 4), y.narrow(1, 6, 4)));
  EXPECT_TRUE(at::allclose(x.narrow(1, 1, 4), y.narrow(1, 1, 4)));   // T1 is the same MLP in both
  fs::remove_all(copy);
}

TEST(Vec2TextModel, WrongKindOfCheckpointIsExplained) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const std::string as_corrector = error_of([&] { CorrectorModel m(tiny_vec2text() / "inversion"); });
  EXPECT_NE(as_corrector.find("'layernorm.weight' is missing"), std::string::npos) << as_corrector;
  EXPECT_NE(as_corrector.find("is it the inversion model?"), std::string::npos) << as_corrector;
  const std::string no_weights = error_of([&] { InversionModel m(tiny_vec2text() / "gtr" / "1_Pooling"); });
  EXPECT_NE(no_weights.find("no weights: none of model.safetensors"), std::string::npos) << no_weights;
}

}  // namespace
}  // namespace lvmflow

// config/wikipedia.yaml, the real-use pipeline, must stay valid: planned here with its model
// and dump paths pointed at tiny fixture models and the bundled sample dump.
#include <gtest/gtest.h>

#include "pipeline/error.hpp"
#include "pipeline/plan.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"
#include "tests/stages/decode/tiny_vec2text.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

namespace fs = std::filesystem;
using testing::tiny_vec2text;

const fs::path kConfig = fs::path(LVMFLOW_SOURCE_DIR) / "config" / "wikipedia.yaml";

TEST(WikipediaConfig, PlansWithEveryStageOfTheRealPipeline) {
  LVMFLOW_REQUIRE_TINY_VEC2TEXT();
  const fs::path store = testing::make_temp_dir("lvmflow-wikipedia-plan");
  const std::string gtr = (tiny_vec2text() / "gtr").string();
  const PipelineSpec spec = load_spec(
      kConfig, stage_registry(),
      {"articles.path=" + (fs::path(LVMFLOW_SOURCE_DIR) / "data" / "sample-pages-articles.xml").string(),
       "chunks.tokenizer=" + gtr + "/spiece.model", "vectors.model=" + gtr, "decode.encoder_model=" + gtr,
       "decode.inversion_model=" + (tiny_vec2text() / "inversion").string(),
       "decode.corrector_model=" + (tiny_vec2text() / "corrector").string()},
      store.string());
  Store s(spec.store);
  const Plan plan = make_plan(spec, s, {});
  std::map<std::string, std::size_t> types;
  for (const auto& p : plan.stages) {
    EXPECT_EQ(p.action, Action::Run) << p.spec->name;
    ++types[p.spec->type];
  }
  EXPECT_EQ(types["encode.gtr_t5"], 1u);
  EXPECT_EQ(types["lvm.train"], 4u);   // amn, lstm, gru, transformer
  EXPECT_EQ(types["lvm.predict"], 4u);
  EXPECT_EQ(types["retrieve.index"], 1u);
  EXPECT_EQ(types["decode.vec2text"], 1u);
  EXPECT_EQ(spec.find("vectors")->params.get_string("pooling"), "vec2text");
  EXPECT_EQ(spec.find("index")->params.get_string("index"), "IVF");
  fs::remove_all(store);
}

TEST(WikipediaConfig, MissingModelsAreNamedWithWhereToGetThem) {
  // As shipped, the file points at ../models/..., which a checkout does not have.
  const fs::path store = testing::make_temp_dir("lvmflow-wikipedia-plan");
  try {
    load_spec(kConfig, stage_registry(),
              {"articles.path=" + (fs::path(LVMFLOW_SOURCE_DIR) / "data" / "sample-pages-articles.xml").string()},
              store.string());
    FAIL() << "planned without models";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("gtr-t5-base"), std::string::npos) << what;
  }
  fs::remove_all(store);
}

}  // namespace
}  // namespace lvmflow

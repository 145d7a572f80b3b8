// `lvmflow why`: the parts of a stage's key and, against its newest stored entry, which part
// changed: nothing / never ran / a param / an input's key / a file fingerprint / the version.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pipeline/error.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"
#include "tools/lvmflow/why.hpp"

namespace lvmflow::testing {
namespace {

const char* kPipeline = R"(pipeline: why
store: store
stages:
  - name: lines
    type: testing.lines
    params: {path: words.txt}
  - name: squares
    type: testing.map
    inputs: [lines]
    params: {op: square}
  - name: plus
    type: testing.map
    inputs: [squares]
    params: {op: add, operand: 1}
)";

class WhyTest : public PipelineFixture {
 protected:
  void SetUp() override {
    PipelineFixture::SetUp();
    write("words.txt", "alpha\nbeta\ngamma\n");
  }
  std::string why(const PipelineSpec& s, const std::string& stage) {
    Store store(s.store);
    std::ostringstream out;
    explain_stage(s, store, stage, out);
    return out.str();
  }
  std::string make_key(const PipelineSpec& s, const std::string& stage) {
    Store store(s.store);
    const Plan plan = make_plan(s, store, {});
    return plan.stages[plan.index_of(stage)].key;
  }
};

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

TEST_F(WhyTest, NeverRanListsThePartsAndSaysSo) {
  const std::string w = why(spec(kPipeline), "plus");
  EXPECT_HAS(w, "stage plus (testing.map): plan says run");
  EXPECT_HAS(w, "type       testing.map");
  EXPECT_HAS(w, "version 1");
  EXPECT_HAS(w, "param      op");
  EXPECT_HAS(w, "param      operand");
  EXPECT_HAS(w, "input      squares");
  EXPECT_HAS(w, "never ran");
}

TEST_F(WhyTest, NothingChangedAfterARun) {
  auto s = spec(kPipeline);
  ASSERT_EQ(run(s).status, "succeeded");
  const std::string w = why(s, "plus");
  EXPECT_HAS(w, "plan says cached");
  EXPECT_HAS(w, "nothing changed");
  EXPECT_EQ(w.find("changed since then"), std::string::npos) << w;
}

TEST_F(WhyTest, AParamChangeIsNamedWithBothValues) {
  ASSERT_EQ(run(spec(kPipeline)).status, "succeeded");
  const std::string w = why(spec(kPipeline, {"plus.operand=5"}), "plus");
  EXPECT_HAS(w, "plan says run");
  EXPECT_HAS(w, "changed  param operand: 1 -> 5");
  EXPECT_HAS(w, "(4 parts unchanged)");   // type, op, fail_at, input
}

TEST_F(WhyTest, AnUpstreamChangeShowsAsTheInputsKey) {
  auto s = spec(kPipeline);
  ASSERT_EQ(run(s).status, "succeeded");
  const std::string before = make_key(s, "squares");
  auto changed = spec(kPipeline, {"squares.op=multiply"});
  const std::string w = why(changed, "plus");
  EXPECT_HAS(w, "changed  input squares: key " + before.substr(0, 12) + " -> key " +
                    make_key(changed, "squares").substr(0, 12));
  EXPECT_EQ(w.find("changed  param"), std::string::npos) << w;
  EXPECT_HAS(why(changed, "squares"), "changed  param op: square -> multiply");
}

TEST_F(WhyTest, AReplacedFileShowsAsItsFingerprint) {
  auto s = spec(kPipeline);
  ASSERT_EQ(run(s).status, "succeeded");
  const std::string file = (dir / "words.txt").string();
  write("words.txt", "alpha\nbeta\ndelta\nepsilon\n");   // same path, new content
  const std::string w = why(s, "lines");
  EXPECT_HAS(w, "changed  file " + file + ": sha256 ");
  EXPECT_HAS(why(s, "squares"), "changed  input lines");
}

TEST_F(WhyTest, AnImplementationVersionBumpIsNamed) {
  auto s = spec(kPipeline);
  ASSERT_EQ(run(s).status, "succeeded");
  StageRegistry bumped;
  for (const StageInfo* info : stage_registry().all()) {
    StageInfo copy = *info;
    if (copy.type == "testing.map") copy.version = 2;
    const std::string family = copy.type.substr(0, copy.type.find('.'));
    bumped.add(std::move(copy), family);
  }
  const PipelineSpec newer = load_spec(dir / "pipeline.yaml", bumped);
  const std::string w = why(newer, "squares");
  EXPECT_HAS(w, "changed  type testing.map: version 1 -> version 2");
}

TEST_F(WhyTest, UnknownStageIsAClearError) {
  try {
    why(spec(kPipeline), "nope");
    FAIL();
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "no stage named 'nope'");
    EXPECT_HAS(std::string(e.what()), "lines, squares, plus");
  }
}

}  // namespace
}  // namespace lvmflow::testing

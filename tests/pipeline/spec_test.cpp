#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "pipeline/error.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

class SpecTest : public PipelineFixture {
 protected:
  // The error message for a spec that must be rejected.
  std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    try {
      spec(yaml, overrides);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "spec was accepted:\n" << yaml;
    return {};
  }
};

const char* kValid = R"(pipeline: demo
vars:
  n: 30
  root: ${env:LVMFLOW_TEST_ROOT}
stages:
  - name: numbers
    type: testing.sequence
    params: {count: "${n}"}
    batch_size: 7
  - name: plus
    type: testing.map
    foreach: {k: [1, 2, 3]}
    inputs: [numbers]
    concurrency: 2
    params: {op: add, operand: "${k}"}
  - name: total
    type: testing.collect
    inputs: [plus]
    cache: false
)";

TEST_F(SpecTest, ParsesVariablesForeachAndGroups) {
  ::setenv("LVMFLOW_TEST_ROOT", "/tmp", 1);
  auto s = spec(kValid);
  EXPECT_EQ(s.name, "demo");
  ASSERT_EQ(s.stages.size(), 5u);
  EXPECT_EQ(s.find("numbers")->params.get_int("count"), 30);
  EXPECT_EQ(s.find("numbers")->batch_size, 7u);
  EXPECT_EQ(s.find("plus.2")->params.get_int("operand"), 2);
  EXPECT_EQ(s.find("plus.3")->concurrency, 2);
  EXPECT_EQ(s.find("plus.1")->group, "plus");
  EXPECT_EQ(s.find("total")->inputs, (std::vector<std::string>{"plus.1", "plus.2", "plus.3"}));
  EXPECT_FALSE(s.find("total")->cache);
  EXPECT_EQ(s.store, dir / ".lvmflow");
}

TEST_F(SpecTest, SetOverridesOneStageOrAGroup) {
  ::setenv("LVMFLOW_TEST_ROOT", "/tmp", 1);
  auto s = spec(kValid, {"plus.2.operand=40", "numbers.count=5"});
  EXPECT_EQ(s.find("plus.2")->params.get_int("operand"), 40);
  EXPECT_EQ(s.find("plus.1")->params.get_int("operand"), 1);
  EXPECT_EQ(s.find("numbers")->params.get_int("count"), 5);
  auto g = spec(kValid, {"plus.operand=9"});
  EXPECT_EQ(g.find("plus.3")->params.get_int("operand"), 9);
  EXPECT_NE(error_of(kValid, {"nosuch.count=1"}).find("no stage named 'nosuch'"), std::string::npos);
  EXPECT_NE(error_of(kValid, {"numbers.count=many"}).find("expects an integer"), std::string::npos);
}

TEST_F(SpecTest, UnknownTypeNamesFileLineColumnAndSuggests) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequense\n");
  EXPECT_NE(e.find("pipeline.yaml:3:5"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown stage type 'testing.sequense'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'testing.sequence'"), std::string::npos) << e;
}

TEST_F(SpecTest, UnknownParamListsValidOnes) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n    params:\n      cuont: 3\n");
  EXPECT_NE(e.find("pipeline.yaml:6:7"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown param 'cuont'"), std::string::npos) << e;
  EXPECT_NE(e.find("valid params: count, fail_at, delay_ms"), std::string::npos) << e;
}

TEST_F(SpecTest, MistypedParamSaysWhatItExpects) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n    params: {count: lots}\n");
  EXPECT_NE(e.find("pipeline.yaml:5:14"), std::string::npos) << e;
  EXPECT_NE(e.find("param 'count' expects an integer, got 'lots'"), std::string::npos) << e;
  auto f = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n  - name: b\n    type: testing.map\n    inputs: [a]\n    params: {op: cube}\n");
  EXPECT_NE(f.find("square, add or multiply"), std::string::npos) << f;
}

TEST_F(SpecTest, MissingInputIsNamed) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n  - name: b\n    type: testing.map\n    inputs: [aa]\n");
  EXPECT_NE(e.find("pipeline.yaml:7:14"), std::string::npos) << e;
  EXPECT_NE(e.find("input 'aa' is not a stage"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'a'"), std::string::npos) << e;
}

TEST_F(SpecTest, CycleIsReportedWithItsPath) {
  auto e = error_of(R"(pipeline: x
stages:
  - name: a
    type: testing.sequence
  - name: b
    type: testing.collect
    inputs: [a, c]
  - name: c
    type: testing.collect
    inputs: [b]
)");
  EXPECT_NE(e.find("cycle"), std::string::npos) << e;
  EXPECT_NE(e.find("b -> c -> b"), std::string::npos) << e;
}

TEST_F(SpecTest, DuplicateNameAndWrongInputCount) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n  - name: a\n    type: testing.sequence\n");
  EXPECT_NE(e.find("pipeline.yaml:5:11"), std::string::npos) << e;
  EXPECT_NE(e.find("duplicate stage name 'a'"), std::string::npos) << e;
  auto f = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.map\n");
  EXPECT_NE(f.find("takes 1 input(s), got 0"), std::string::npos) << f;
}

TEST_F(SpecTest, UnknownVariableAndKeysAndBadYaml) {
  auto e = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n    params: {count: \"${nope}\"}\n");
  EXPECT_NE(e.find("unknown variable '${nope}'"), std::string::npos) << e;
  auto f = error_of("pipeline: x\nstages:\n  - name: a\n    typ: testing.sequence\n");
  EXPECT_NE(f.find("unknown stage key 'typ'"), std::string::npos) << f;
  auto g = error_of("pipeline: x\nstages:\n  - name: a\n    type: [unclosed\n");
  EXPECT_NE(g.find("invalid YAML"), std::string::npos) << g;
  auto h = error_of("pipeline: x\nstages:\n  - name: a\n    type: testing.sequence\n    params: {count: 3}\n    concurrency: 0\n");
  EXPECT_NE(h.find("concurrency"), std::string::npos) << h;
}

// Property: whatever garbage the YAML holds, loading fails with lvmflow::Error or succeeds;
// it never crashes or throws anything else.
TEST_F(SpecTest, RandomMutationsNeverCrash) {
  std::string base = kValid;
  ::setenv("LVMFLOW_TEST_ROOT", "/tmp", 1);
  std::mt19937 rng(42);
  const std::string alphabet = "{}[]:-,\"'$ \n\tabc123.#|>&*!%@";
  for (int i = 0; i < 400; ++i) {
    std::string text = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      std::size_t pos = rng() % text.size();
      switch (rng() % 3) {
        case 0: text[pos] = alphabet[rng() % alphabet.size()]; break;
        case 1: text.erase(pos, 1 + rng() % 8); break;
        default: text.insert(pos, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    try {
      spec(text);
    } catch (const Error&) {
    } catch (const std::exception& e) {
      FAIL() << "non-lvmflow exception " << e.what() << " for:\n" << text;
    }
  }
}

}  // namespace
}  // namespace lvmflow::testing

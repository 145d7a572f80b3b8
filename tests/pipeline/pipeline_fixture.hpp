#pragma once
// Helpers for engine tests: a temp folder with a pipeline file and its store, and in-process
// or out-of-process (the real `lvmflow` binary) runs.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pipeline/executor.hpp"
#include "pipeline/spec.hpp"
#include "pipeline/store.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

class PipelineFixture : public ::testing::Test {
 protected:
  void SetUp() override { dir = make_temp_dir("lvmflow-engine"); }
  void TearDown() override {
    std::error_code ec;
    if (!HasFailure()) std::filesystem::remove_all(dir, ec);
  }

  std::filesystem::path write(const std::string& name, const std::string& text) {
    auto p = dir / name;
    std::ofstream(p) << text;
    return p;
  }
  PipelineSpec spec(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
    auto file = write("pipeline.yaml", yaml);
    return load_spec(file, stage_registry(), overrides);
  }
  RunResult run(const PipelineSpec& s, PlanOptions plan = {}, std::size_t max_in_flight = 4) {
    Store store(s.store);
    RunOptions o;
    o.plan = std::move(plan);
    o.progress = ProgressMode::None;
    o.graph.max_in_flight = max_in_flight;
    return run_pipeline(s, store, o);
  }
  // Actions per stage name of a finished run.
  std::map<std::string, std::string> actions(const PipelineSpec& s, std::int64_t run_id) {
    Store store(s.store);
    std::map<std::string, std::string> out;
    for (const auto& r : store.stage_runs(run_id)) out[r.stage] = r.action;
    return out;
  }
  std::string summary(const PipelineSpec& s, const std::string& stage_key) {
    Store store(s.store);
    std::ifstream in(store.artifact_path(stage_key) / "summary.txt");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::filesystem::path dir;
};

// Runs a shell command, returning its exit status and output.
std::pair<int, std::string> shell(const std::string& command);

// A file's bytes ("" when it cannot be read).
std::string read_file_bytes(const std::filesystem::path& file);

// The bundled sample's dataset rebuild: ingest -> chunk -> encode (built-in encoder) ->
// windows, named `name`, storing in ./store; `more_stages` is appended to the stage list.
std::string sample_rebuild_yaml(const std::string& name, const std::string& more_stages = "");

}  // namespace lvmflow::testing

#pragma once
// An in-memory StageContext so a stage can be tested alone, without a graph or a store.
#include <filesystem>
#include <map>
#include <mutex>
#include <vector>

#include "pipeline/stage.hpp"

namespace lvmflow::testing {

class MemoryItemCache : public ItemCache {
 public:
  std::vector<std::optional<std::string>> get_many(const std::string& ns,
                                                   const std::vector<std::string>& keys) override;
  void put_many(const std::string& ns,
                const std::vector<std::pair<std::string, std::string>>& entries) override;
  std::size_t size() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string> entries_;
};

struct RecordedMetric {
  std::string name;
  double value;
  std::int64_t step;
  std::string label;
};

class TestContext : public StageContext {
 public:
  // Params are checked against the registered docs of `type` (defaults filled in), exactly
  // as the spec loader does; `raw` maps param name -> YAML-style text.
  TestContext(const std::string& type, const std::map<std::string, std::string>& raw = {});
  ~TestContext() override;

  const std::string& stage_name() const override { return name_; }
  const Params& params() const override { return params_; }
  std::filesystem::path artifact_dir() const override { return dir_; }
  // Shared by every TestContext of the process's temp folder, like a store's staging folder.
  std::filesystem::path resume_dir(const std::string& id) override;
  std::filesystem::path input_dir(std::size_t i) const override { return input_dirs_.at(i); }
  std::size_t input_count() const override { return input_dirs_.size(); }
  const std::string& input_name(std::size_t i) const override { return input_names_.at(i); }
  void metric(const std::string& name, double value, std::int64_t step,
              const std::string& label) override;
  void metric_text(const std::string& name, const std::string& text) override;
  void log(const std::string& message) override;
  bool cancelled() const override { return cancel_; }
  ItemCache& item_cache() override { return shared_cache ? *shared_cache : cache_; }
  // Each context is an artifact committed under its own key (stage tests commit at once), so
  // stages can refer to another live context's files by key, as they do through the store.
  const std::string& artifact_key() const override { return key_; }
  std::filesystem::path committed_artifact(const std::string& key) const override;
  void record_chunks(const Batch& chunks) override;

  void add_input(const std::string& name, const std::filesystem::path& dir) {
    input_names_.push_back(name);
    input_dirs_.push_back(dir);
  }
  // Builds the registered stage from this context's params.
  std::unique_ptr<Stage> make_stage() const;

  // Last recorded value of a metric (throws if absent).
  double metric_value(const std::string& name, const std::string& label = {}) const;

  std::vector<RecordedMetric> metrics;
  std::map<std::string, std::string> text_metrics;
  std::vector<std::string> logs;
  std::vector<Batch> chunks;
  MemoryItemCache cache_;
  ItemCache* shared_cache = nullptr;   // set: use another context's item cache (a second run)
  bool cancel_ = false;

 private:
  std::string type_, name_, key_;
  Params params_;
  std::filesystem::path dir_;
  std::vector<std::string> input_names_;
  std::vector<std::filesystem::path> input_dirs_;
  mutable std::mutex mutex_;
};

// Drains a source stage into batches.
std::vector<Batch> drain_source(SourceStage& stage, StageContext& ctx, std::size_t batch_size);
// Runs a barrier stage over inputs and returns its output batches.
std::vector<Batch> run_barrier(BarrierStage& stage, StageContext& ctx,
                               std::vector<StageInput>& inputs);
// A fresh empty folder under the system temp dir, removed by the caller or left for debugging.
std::filesystem::path make_temp_dir(const std::string& prefix);

}  // namespace lvmflow::testing

#include "tests/support/test_context.hpp"

#include <atomic>
#include <chrono>
#include <iostream>
#include <random>

#include "pipeline/error.hpp"

namespace lvmflow::testing {

std::vector<std::optional<std::string>> MemoryItemCache::get_many(
    const std::string& ns, const std::vector<std::string>& keys) {
  std::lock_guard lock(mutex_);
  std::vector<std::optional<std::string>> out;
  for (const auto& k : keys) {
    auto it = entries_.find(ns + '\0' + k);
    out.push_back(it == entries_.end() ? std::nullopt : std::optional<std::string>(it->second));
  }
  return out;
}

void MemoryItemCache::put_many(const std::string& ns,
                               const std::vector<std::pair<std::string, std::string>>& entries) {
  std::lock_guard lock(mutex_);
  for (const auto& [k, v] : entries) entries_[ns + '\0' + k] = v;
}

std::size_t MemoryItemCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

std::filesystem::path make_temp_dir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + "-" + std::to_string(rd()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(dir);
  return dir;
}

namespace {
std::mutex live_mutex;
std::map<std::string, std::filesystem::path>& live_artifacts() {
  static std::map<std::string, std::filesystem::path> live;
  return live;
}
}  // namespace

std::filesystem::path TestContext::committed_artifact(const std::string& key) const {
  std::lock_guard lock(live_mutex);
  auto it = live_artifacts().find(key);
  return it == live_artifacts().end() ? std::filesystem::path() : it->second;
}

TestContext::TestContext(const std::string& type, const std::map<std::string, std::string>& raw)
    : type_(type), name_("test_" + type) {
  const StageInfo* info = stage_registry().find(type);
  if (!info) throw Error("test", "no stage type '" + type + "' registered");
  std::map<std::string, RawParam> raw_params;
  for (const auto& [k, v] : raw) raw_params[k] = RawParam{v, false, {}, "test param " + k};
  params_ = check_params(*info, raw_params, std::filesystem::current_path().string(), name_);
  dir_ = make_temp_dir("lvmflow-test");
  key_ = "test-" + dir_.filename().string();
  std::lock_guard lock(live_mutex);
  live_artifacts()[key_] = dir_;
}

TestContext::~TestContext() {
  {
    std::lock_guard lock(live_mutex);
    live_artifacts().erase(key_);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::filesystem::path TestContext::resume_dir(const std::string& id) {
  auto dir = std::filesystem::temp_directory_path() / ("lvmflow-test-resume-" + id);
  std::filesystem::create_directories(dir);
  return dir;
}

void TestContext::metric(const std::string& name, double value, std::int64_t step,
                         const std::string& label) {
  std::lock_guard lock(mutex_);
  metrics.push_back({name, value, step, label});
}

void TestContext::metric_text(const std::string& name, const std::string& text) {
  std::lock_guard lock(mutex_);
  text_metrics[name] = text;
}

void TestContext::log(const std::string& message) {
  std::lock_guard lock(mutex_);
  logs.push_back(message);
}

void TestContext::record_chunks(const Batch& batch) {
  std::lock_guard lock(mutex_);
  chunks.push_back(batch);
}

std::unique_ptr<Stage> TestContext::make_stage() const {
  return stage_registry().find(type_)->make(params_);
}

double TestContext::metric_value(const std::string& name, const std::string& label) const {
  std::lock_guard lock(mutex_);
  for (auto it = metrics.rbegin(); it != metrics.rend(); ++it)
    if (it->name == name && it->label == label) return it->value;
  throw Error("test", "metric '" + name + "' was not recorded");
}

std::vector<Batch> drain_source(SourceStage& stage, StageContext& ctx, std::size_t batch_size) {
  std::vector<Batch> out;
  Batch b;
  while (stage.next(ctx, b, batch_size)) {
    b.seq = out.size();
    out.push_back(std::move(b));
    b = Batch{};
  }
  return out;
}

namespace {
class VectorSink : public BatchSink {
 public:
  void emit(Batch batch) override {
    batch.seq = batches.size();
    batches.push_back(std::move(batch));
  }
  std::vector<Batch> batches;
};
}  // namespace

std::vector<Batch> run_barrier(BarrierStage& stage, StageContext& ctx,
                               std::vector<StageInput>& inputs) {
  VectorSink sink;
  stage.run(ctx, inputs, sink);
  return std::move(sink.batches);
}

}  // namespace lvmflow::testing

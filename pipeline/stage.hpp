#pragma once
// The stage contract. A stage family registers each of its types with the StageRegistry;
// the engine builds stages from the checked spec and hands them a StageContext. Stages never
// touch SQLite or TBB: everything they need from the run comes through the context, which
// keeps each stage testable alone (tests/support provides a context for that).
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/params.hpp"

namespace lvmflow {

enum class StageKind { Source, Map, Barrier };
const char* to_string(StageKind k);

// Item-level cache shared by all runs of a store (e.g. text hash -> embedding), so a dataset
// rebuild recomputes only the items that changed. Thread-safe.
class ItemCache {
 public:
  virtual ~ItemCache() = default;
  // Looks up many keys at once; returns one entry per key (nullopt on a miss).
  virtual std::vector<std::optional<std::string>> get_many(
      const std::string& ns, const std::vector<std::string>& keys) = 0;
  virtual void put_many(const std::string& ns,
                        const std::vector<std::pair<std::string, std::string>>& entries) = 0;
};

class StageContext {
 public:
  virtual ~StageContext() = default;
  virtual const std::string& stage_name() const = 0;
  virtual const Params& params() const = 0;
  // Folder this stage writes its files into. It is a private staging folder during the run;
  // the engine commits it atomically when the stage finishes.
  virtual std::filesystem::path artifact_dir() const = 0;
  // A folder for state that lets a later run of the same work resume after an interruption
  // (e.g. training state saved every epoch). `id` names the work (letters, digits, '-', '_';
  // the stage derives it from what decides its result): a later run asking for the same id
  // gets the same folder. The engine locks it while this run lasts; a second run asking for
  // the same id at the same time gets a private folder instead, so no two runs write the same
  // state. The stage deletes it once its output is complete; `lvmflow gc` keeps it.
  // Contexts without a store (benchmarks) have none and throw lvmflow::Error.
  virtual std::filesystem::path resume_dir(const std::string& id);
  // Committed folder of input `i` (its files: model.safetensors, index.faiss, ...). Valid for
  // barrier stages and for the side inputs (all but the first) of map stages.
  virtual std::filesystem::path input_dir(std::size_t i) const = 0;
  virtual std::size_t input_count() const = 0;
  // This stage's cache key, and the committed artifact folder of any key (empty when the store
  // holds no committed artifact under it). They let a stage refer to rows of another run's
  // output (e.g. an item cache of row references) instead of copying them.
  // (Defaults: no key, nothing committed - contexts outside a store.)
  virtual const std::string& artifact_key() const;
  virtual std::filesystem::path committed_artifact(const std::string& key) const;
  virtual const std::string& input_name(std::size_t i) const = 0;
  // Metrics land in the store's metrics table. `step` orders series (e.g. epochs); `label`
  // groups them (e.g. a model name).
  virtual void metric(const std::string& name, double value, std::int64_t step = -1,
                      const std::string& label = {}) = 0;
  virtual void metric_text(const std::string& name, const std::string& text) = 0;
  virtual void log(const std::string& message) = 0;
  virtual bool cancelled() const = 0;
  virtual ItemCache& item_cache() = 0;
  // Stores rows of a chunk batch (columns: article_id, title, section, position, text, hash)
  // in the store's chunks table under this stage's cache key.
  virtual void record_chunks(const Batch& chunks) = 0;
};

// Emits a stage's output batches in order; seq numbers are assigned by the engine.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  virtual void emit(Batch batch) = 0;
};

class Stage {
 public:
  virtual ~Stage() = default;
};

class SourceStage : public Stage {
 public:
  // Fills `out` with the next batch (at most `batch_size` rows, a hint); false at the end.
  virtual bool next(StageContext& ctx, Batch& out, std::size_t batch_size) = 0;
};

class MapStage : public Stage {
 public:
  // Called once before the first batch, after all side inputs are complete.
  virtual void start(StageContext&) {}
  // Called concurrently (up to the stage's concurrency): must be thread-safe. One output
  // batch per input batch (it may have zero rows).
  virtual Batch process(StageContext& ctx, const Batch& in) = 0;
  // Called with every output batch, serially and in stream order (e.g. to write a file).
  virtual void consume_ordered(StageContext&, const Batch&) {}
  // Called once after the last output batch.
  virtual void finish(StageContext&) {}
};

// One input of a barrier stage. The engine hands over committed inputs: their batches are
// streamed from the artifact folder one at a time, so a barrier that needs one pass holds one
// batch, not the whole input. Stage tests may give the batches in memory instead.
struct StageInput {
  std::string name;
  std::filesystem::path dir;    // the input's committed artifact folder
  std::vector<Batch> batches;   // in-memory input (tests); used when `streamed` is false
  bool streamed = false;        // true: read dir/batches.bin (the engine sets this)

  // Calls `fn` with every batch in stream order; may be called more than once. With
  // `with_vectors` false, vectors the input keeps in its vectors.npy are not read (such
  // batches come with dim 0 and Batch::vector_file_row set); inline vectors always come.
  void for_each_batch(const std::function<void(const Batch&)>& fn, bool with_vectors = true) const;
};

class BarrierStage : public Stage {
 public:
  virtual void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) = 0;
};

struct StageInfo {
  std::string type;      // YAML `type:`; family prefix = folder under stages/
  int version = 1;       // bump when the output for the same params changes
  StageKind kind = StageKind::Map;
  std::string summary;
  std::vector<ParamDoc> params;
  std::size_t min_inputs = 0;
  std::size_t max_inputs = 0;  // SIZE_MAX for "any number"
  std::function<std::unique_ptr<Stage>(const Params&)> make;
  // Sources: the files whose content decides the output (fingerprinted into the cache key).
  std::function<std::vector<std::filesystem::path>(const Params&)> files_read;
  // Stage-specific checks on params beyond their types; throw lvmflow::Error.
  std::function<void(const Params&)> validate;
  // The stage writes every output vector, in stream order, into vectors.npy of its artifact
  // (row i = output row i). The engine then stores batches.bin without the vector payload.
  bool vectors_file = false;
};

class StageRegistry {
 public:
  // Registers `info` for the stage family `family` (its folder under stages/). Throws
  // lvmflow::Error unless info.type is "<family>.<name>": a reader finds every stage type in
  // the folder its prefix names.
  void add(StageInfo info, const std::string& family);
  // The same for the family whose registration is in progress (FamilyScope); throws when none is.
  void add(StageInfo info);

  // While alive, add(info) registers for `family`. The generated register_all.cpp opens one
  // around each family's register_<folder>_stages(), with the family name CMake gives it.
  class FamilyScope {
   public:
    FamilyScope(StageRegistry& registry, std::string family)
        : registry_(registry), previous_(std::exchange(registry.family_, std::move(family))) {}
    ~FamilyScope() { registry_.family_ = std::move(previous_); }
    FamilyScope(const FamilyScope&) = delete;
    FamilyScope& operator=(const FamilyScope&) = delete;

   private:
    StageRegistry& registry_;
    std::string previous_;
  };

  const StageInfo* find(const std::string& type) const;
  std::vector<const StageInfo*> all() const;   // sorted by type

 private:
  std::map<std::string, StageInfo> infos_;
  std::string family_;   // of the registration in progress (FamilyScope)
};

// Registers every stage family linked into the program (generated stages/register_all.cpp).
void register_all_stages(StageRegistry& registry);
// The registry with every linked stage family, built on first use.
const StageRegistry& stage_registry();

}  // namespace lvmflow

// seq.window (barrier): encoded chunks -> (context, next) windows, split by article.
#include <filesystem>
#include <sstream>

#include "pipeline/error.hpp"
#include "pipeline/stage.hpp"
#include "stages/seq/sequence_windows.hpp"

namespace lvmflow {
namespace {

WindowOptions window_options(const Params& params) {
  WindowOptions o;
  std::int64_t context = params.get_int("context");
  o.context = context < 1 ? 0 : static_cast<std::size_t>(context);
  o.val_fraction = params.get_float("val_fraction");
  o.seed = static_cast<std::uint64_t>(params.get_int("seed"));
  return o;
}

class SequenceWindowStage : public BarrierStage {
 public:
  explicit SequenceWindowStage(WindowOptions options) : options_(options) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = "stage '" + ctx.stage_name() + "' (seq.window)";
    if (inputs.empty()) throw Error(where, "no input", "give seq.window an encode.* stage as input");
    WindowStats stats;
    std::vector<Batch> windows = make_windows(inputs[0], ctx.artifact_dir(), options_, where, &stats);
    ctx.metric("chunks", static_cast<double>(stats.chunks));
    ctx.metric("articles", static_cast<double>(stats.articles));
    ctx.metric("articles_too_short", static_cast<double>(stats.articles_too_short));
    ctx.metric("articles_train", static_cast<double>(stats.articles_train));
    ctx.metric("articles_val", static_cast<double>(stats.articles_val));
    ctx.metric("windows_train", static_cast<double>(stats.windows_train));
    ctx.metric("windows_val", static_cast<double>(stats.windows_val));
    std::ostringstream msg;
    msg << stats.windows_train << " train windows from " << stats.articles_train << " articles, "
        << stats.windows_val << " validation windows from " << stats.articles_val << " articles ("
        << stats.articles_too_short << " articles shorter than " << options_.context + 1 << " chunks); vectors.npy "
        << (stats.vectors_linked ? "linked to the input's (no copy)" : "written in article order");
    ctx.log(msg.str());
    if (stats.windows_train + stats.windows_val == 0)
      ctx.log("no windows: every article has fewer than " + std::to_string(options_.context + 1) +
              " chunks (lower `context:` or use longer articles)");
    // Pass the encoder's description on, so lvm.train can record which vectors it learned.
    if (!inputs[0].dir.empty() && std::filesystem::exists(inputs[0].dir / "encoder.json"))
      std::filesystem::copy_file(inputs[0].dir / "encoder.json", ctx.artifact_dir() / "encoder.json",
                                 std::filesystem::copy_options::overwrite_existing);
    for (Batch& b : windows) {
      if (ctx.cancelled()) return;
      out.emit(std::move(b));
    }
  }

 private:
  WindowOptions options_;
};

}  // namespace

void register_seq_stages(StageRegistry& registry) {
  StageInfo info;
  info.type = "seq.window";
  // 2: windows refer to rows of vectors.npy instead of carrying (N+1) vectors each.
  info.version = 2;
  info.kind = StageKind::Barrier;
  info.summary =
      "Ordered chunk vectors of each article -> (N context vectors, next vector) windows; "
      "train/validation split by article. Windows name their target's row in vectors.npy (a hard "
      "link of the encoder's) instead of copying vectors";
  info.params = {
      {"context", ParamType::Int, "5", "N: context vectors before each target"},
      {"val_fraction", ParamType::Float, "0.1",
       "share of articles held out for validation (decided per article by a seeded hash)"},
      {"seed", ParamType::Int, "42", "seed of the article split"},
  };
  info.min_inputs = 1;
  info.max_inputs = 1;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> {
    return std::make_unique<SequenceWindowStage>(window_options(p));
  };
  info.validate = [](const Params& p) {
    if (p.get_int("context") < 1)
      throw Error("param context", "must be at least 1, got " + std::to_string(p.get_int("context")),
                  "set `context:` to e.g. 5");
    double f = p.get_float("val_fraction");
    if (!(f >= 0.0 && f < 1.0))
      throw Error("param val_fraction", "must be in [0, 1), got " + std::to_string(f),
                  "set `val_fraction:` to e.g. 0.1");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow

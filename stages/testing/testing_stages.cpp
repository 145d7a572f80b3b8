// Small synthetic stages for engine tests, the engine benchmark and trying pipelines out:
// a counting source, a file-lines source, an arithmetic map and a summing barrier. They do
// trivial work on purpose, with optional delays and injected failures.
#include <chrono>
#include <fstream>
#include <random>
#include <thread>

#include "pipeline/error.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {

namespace {

void sleep_ms(double ms) {
  if (ms > 0) std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(ms * 1000)));
}

class SequenceSource : public SourceStage {
 public:
  explicit SequenceSource(const Params& p)
      : count_(p.get_int("count")), fail_at_(p.get_int("fail_at")), delay_ms_(p.get_float("delay_ms")) {}
  bool next(StageContext& ctx, Batch& out, std::size_t batch_size) override {
    if (next_ >= count_ || ctx.cancelled()) return false;
    sleep_ms(delay_ms_);
    auto& value = out.ints["value"];
    for (std::size_t i = 0; i < batch_size && next_ < count_; ++i, ++next_) {
      if (next_ == fail_at_) throw Error("item " + std::to_string(next_), "injected failure");
      out.ids.push_back("item-" + std::to_string(next_));
      value.push_back(next_);
    }
    return true;
  }

 private:
  std::int64_t count_, fail_at_, next_ = 0;
  double delay_ms_;
};

class LinesSource : public SourceStage {
 public:
  explicit LinesSource(const Params& p) : path_(p.get_path("path")) {}
  bool next(StageContext&, Batch& out, std::size_t batch_size) override {
    if (!in_.is_open()) {
      in_.open(path_);
      if (!in_) throw Error(path_, "cannot read file", "check the `path` param");
    }
    std::string line;
    auto& text = out.text["text"];
    auto& value = out.ints["value"];
    while (out.rows() < batch_size && std::getline(in_, line)) {
      out.ids.push_back("line-" + std::to_string(line_));
      text.push_back(line);
      value.push_back(static_cast<std::int64_t>(line.size()));
      ++line_;
    }
    return out.rows() > 0;
  }

 private:
  std::string path_;
  std::ifstream in_;
  std::int64_t line_ = 0;
};

class ArithmeticMap : public MapStage {
 public:
  explicit ArithmeticMap(const Params& p)
      : op_(p.get_string("op")), operand_(p.get_int("operand")), fail_at_(p.get_int("fail_at")),
        delay_ms_(p.get_float("delay_ms")), jitter_ms_(p.get_float("jitter_ms")) {}
  Batch process(StageContext&, const Batch& in) override {
    if (jitter_ms_ > 0) {
      // Random per-batch delay so batches finish out of order under concurrency.
      thread_local std::mt19937 rng{std::random_device{}()};
      sleep_ms(std::uniform_real_distribution<double>(0, jitter_ms_)(rng));
    }
    sleep_ms(delay_ms_);
    Batch out;
    out.ids = in.ids;
    auto& value = out.ints["value"];
    for (std::size_t r = 0; r < in.rows(); ++r) {
      std::int64_t v = in.int_column("value")[r];
      if (v == fail_at_) throw Error("item '" + in.ids[r] + "'", "injected failure");
      value.push_back(op_ == "square" ? v * v : op_ == "add" ? v + operand_ : v * operand_);
    }
    return out;
  }

 private:
  std::string op_;
  std::int64_t operand_, fail_at_;
  double delay_ms_, jitter_ms_;
};

class SumBarrier : public BarrierStage {
 public:
  explicit SumBarrier(const Params& p) : delay_ms_(p.get_float("delay_ms")) {}
  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    sleep_ms(delay_ms_);
    Batch b;
    for (const auto& input : inputs) {
      std::int64_t sum = 0, count = 0, order_ok = 1, expected = -1;
      input.for_each_batch([&](const Batch& batch) {
        for (std::size_t r = 0; r < batch.rows(); ++r) {
          sum += batch.int_column("value")[r];
          ++count;
          // Rows arrive in stream order: ids "item-N" must ascend.
          auto pos = batch.ids[r].rfind('-');
          std::int64_t n = pos == std::string::npos ? -1 : std::atoll(batch.ids[r].c_str() + pos + 1);
          if (n <= expected) order_ok = 0;
          expected = n;
        }
      });
      b.ids.push_back(input.name);
      b.ints["sum"].push_back(sum);
      b.ints["count"].push_back(count);
      b.ints["in_order"].push_back(order_ok);
      ctx.metric("sum", static_cast<double>(sum), -1, input.name);
    }
    std::ofstream summary(ctx.artifact_dir() / "summary.txt");
    for (std::size_t i = 0; i < b.rows(); ++i)
      summary << b.ids[i] << " " << b.ints["sum"][i] << " " << b.ints["count"][i] << "\n";
    out.emit(std::move(b));
  }

 private:
  double delay_ms_;
};

ParamDoc delay_doc() {
  return {"delay_ms", ParamType::Float, "0", "sleep this long per batch (timing only)", false, false};
}

}  // namespace

void register_testing_stages(StageRegistry& registry) {
  registry.add({"testing.sequence", 1, StageKind::Source,
                "Emits `count` rows item-0..item-N-1 with an int column `value` = N (engine tests and benchmarks).",
                {{"count", ParamType::Int, "100", "number of rows"},
                 {"fail_at", ParamType::Int, "-1", "throw when reaching this item (tests)"},
                 delay_doc()},
                0, 0, [](const Params& p) { return std::make_unique<SequenceSource>(p); }});
  registry.add({"testing.lines", 1, StageKind::Source,
                "Emits one row per line of a text file (text column `text`, int `value` = length).",
                {{"path", ParamType::Path, "", "text file to read", true}},
                0, 0, [](const Params& p) { return std::make_unique<LinesSource>(p); },
                [](const Params& p) { return std::vector<std::filesystem::path>{p.get_path("path")}; }});
  registry.add({"testing.map", 1, StageKind::Map,
                "Arithmetic on the `value` column: square, add or multiply by `operand`.",
                {{"op", ParamType::String, "square", "square | add | multiply"},
                 {"operand", ParamType::Int, "1", "for add and multiply"},
                 {"fail_at", ParamType::Int, "-1", "throw on the row whose value is this (tests)"},
                 delay_doc(),
                 {"jitter_ms", ParamType::Float, "0", "random extra sleep per batch (ordering tests)", false, false}},
                1, 1, [](const Params& p) { return std::make_unique<ArithmeticMap>(p); }, {},
                [](const Params& p) {
                  auto op = p.get_string("op");
                  if (op != "square" && op != "add" && op != "multiply")
                    throw Error("", "param 'op' must be square, add or multiply, got '" + op + "'");
                }});
  registry.add({"testing.collect", 1, StageKind::Barrier,
                "Sums `value` per input and checks that rows arrived in order; writes summary.txt.",
                {delay_doc()},
                1, SIZE_MAX, [](const Params& p) { return std::make_unique<SumBarrier>(p); }});
}

}  // namespace lvmflow

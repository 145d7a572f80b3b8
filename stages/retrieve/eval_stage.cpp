// retrieve.eval (barrier): Top-K retrieval accuracy of predicted next-chunk vectors over the
// whole indexed corpus next to the no-learning baselines, and recall of an approximate index
// against exact search.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <sstream>
#include <unordered_map>

#include "pipeline/error.hpp"
#include "stages/common/baseline_verdict.hpp"
#include "stages/retrieve/index_folder.hpp"
#include "stages/retrieve/retrieve_stages.hpp"
#include "stages/retrieve/topk_scoring.hpp"

namespace lvmflow {
namespace {

constexpr const char* kType = "retrieve.eval";
// Queries per FAISS call: bounds the result buffers, large enough for BLAS to be efficient.
constexpr std::size_t kQueryBlock = 8192;

struct EvalOptions {
  std::vector<std::size_t> ks;
  bool exclude_context = false;
  std::size_t context = 5;
  std::string split;   // "val", "train" or "all"
  std::size_t nprobe = 0;
  std::size_t ef_search = 0;
  bool mmap = true;
  std::size_t threads = 0;
};

// The predictions of one model: query vectors and the index row of each true next chunk.
struct ModelQueries {
  std::string label;
  std::string input;
  std::size_t dim = 0;
  std::vector<float> vectors;
  std::vector<std::int64_t> targets;                 // -1: target chunk not in the index
  std::vector<std::vector<std::int64_t>> excluded;   // per query, when exclude_context
  // Per query, the index rows of its context chunks (positions target-N..target-1, -1 where a
  // chunk is not indexed), for the baselines; contexts_known is false when some query's
  // article and position cannot be told.
  std::vector<std::vector<std::int64_t>> contexts;
  bool contexts_known = true;
  std::size_t missing_targets = 0;
  std::string first_missing;   // for the error when no target is in the index
};

struct ModelScores {
  std::vector<double> top;         // per k
  std::vector<double> exact_top;   // per k, approximate indexes only
  std::vector<double> recall;      // per k, approximate indexes only
};

// "<article_id>:<position>" -> (article_id, position); nullopt for other id shapes.
std::optional<std::pair<std::int64_t, std::int64_t>> parse_chunk_id(const std::string& id) {
  auto colon = id.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::int64_t article = 0, position = 0;
  auto a = std::from_chars(id.data(), id.data() + colon, article);
  auto p = std::from_chars(id.data() + colon + 1, id.data() + id.size(), position);
  if (a.ec != std::errc{} || a.ptr != id.data() + colon || p.ec != std::errc{} || p.ptr != id.data() + id.size())
    return std::nullopt;
  return std::make_pair(article, position);
}

int split_code(const std::string& split) { return split == "train" ? 0 : split == "val" ? 1 : -1; }

// Splits one prediction input into per-model query sets (by its `model` column, else the
// input's name) and looks up each target chunk in the index. Returns the rows taken.
std::size_t collect_queries(const StageInput& input, const EvalOptions& o,
                     const std::unordered_map<std::string, std::size_t>& rows_by_id,
                     std::map<std::string, ModelQueries>& models, const std::string& where) {
  const int wanted_split = split_code(o.split);
  std::size_t taken = 0;
  input.for_each_batch([&](const Batch& b) {
    if (b.rows() == 0) return;
    const std::string bw = where + ", input '" + input.name + "'";
    b.check_consistent(bw);
    if (b.dim == 0)
      throw Error(bw, "predictions carry no vectors", "give retrieve.eval lvm.predict stages after the index");
    const std::vector<std::string>* model = b.text.count("model") ? &b.text.at("model") : nullptr;
    const std::vector<std::int64_t>* split = b.ints.count("split") ? &b.ints.at("split") : nullptr;
    if (wanted_split >= 0 && !split)
      throw Error(bw, "has no `split` column to select '" + o.split + "' rows by",
                  "set `split: all` to evaluate every row");
    const std::vector<std::int64_t>* article = b.ints.count("article_id") ? &b.ints.at("article_id") : nullptr;
    const std::vector<std::int64_t>* position =
        b.ints.count("target_position") ? &b.ints.at("target_position") : nullptr;
    for (std::size_t r = 0; r < b.rows(); ++r) {
      if (wanted_split >= 0 && (*split)[r] != wanted_split) continue;
      ++taken;
      const std::string label = model ? (*model)[r] : input.name;
      // Two inputs naming the same model stay apart under "<input>/<model>".
      const std::string key = input.name + '\0' + label;
      auto [it, fresh] = models.try_emplace(key);
      ModelQueries& m = it->second;
      if (fresh) {
        m.label = label;
        m.input = input.name;
        m.dim = b.dim;
      }
      if (b.dim != m.dim)
        throw Error(bw, "mixes " + std::to_string(m.dim) + "-D and " + std::to_string(b.dim) + "-D vectors");
      m.vectors.insert(m.vectors.end(), b.vector(r), b.vector(r) + b.dim);
      auto found = rows_by_id.find(b.ids[r]);
      m.targets.push_back(found == rows_by_id.end() ? -1 : static_cast<std::int64_t>(found->second));
      if (found == rows_by_id.end() && m.missing_targets++ == 0) m.first_missing = b.ids[r];
      std::optional<std::pair<std::int64_t, std::int64_t>> where_in_article;
      if (article && position) where_in_article = std::make_pair((*article)[r], (*position)[r]);
      else where_in_article = parse_chunk_id(b.ids[r]);
      if (!where_in_article) {
        if (o.exclude_context)
          throw Error(bw, "cannot tell the context chunks of '" + b.ids[r] +
                              "' (no article_id/target_position columns, id not <article>:<position>)",
                      "set `exclude_context: false`");
        m.contexts_known = false;
        continue;
      }
      std::vector<std::int64_t> context_rows;
      const auto [a, t] = *where_in_article;
      for (std::int64_t pos = t - static_cast<std::int64_t>(o.context); pos < t; ++pos) {
        auto c = rows_by_id.find(std::to_string(a) + ":" + std::to_string(pos));
        context_rows.push_back(c == rows_by_id.end() ? -1 : static_cast<std::int64_t>(c->second));
      }
      if (o.exclude_context) {
        std::vector<std::int64_t> indexed;
        for (std::int64_t row : context_rows)
          if (row >= 0) indexed.push_back(row);
        m.excluded.push_back(std::move(indexed));
      }
      m.contexts.push_back(std::move(context_rows));
    }
  });
  return taken;
}

// Top-kmax hits for every query of `m`, with its context chunks dropped when asked.
SearchHits search_all(const VectorIndex& index, const ModelQueries& m, std::size_t kmax,
                      const EvalOptions& o, const std::string& where) {
  const std::size_t n = m.targets.size();
  const std::size_t fetch = kmax + (o.exclude_context ? o.context : 0);
  SearchHits all;
  all.queries = n;
  all.k = kmax;
  all.rows.reserve(n * kmax);
  all.scores.reserve(n * kmax);
  for (std::size_t begin = 0; begin < n; begin += kQueryBlock) {
    const std::size_t count = std::min(kQueryBlock, n - begin);
    SearchHits hits = index.search(m.vectors.data() + begin * m.dim, count, m.dim, fetch, where);
    std::vector<std::vector<std::int64_t>> excluded;
    if (o.exclude_context)
      excluded.assign(m.excluded.begin() + static_cast<std::ptrdiff_t>(begin),
                      m.excluded.begin() + static_cast<std::ptrdiff_t>(begin + count));
    SearchHits kept = drop_excluded(hits, kmax, excluded);
    all.rows.insert(all.rows.end(), kept.rows.begin(), kept.rows.end());
    all.scores.insert(all.scores.end(), kept.scores.begin(), kept.scores.end());
  }
  return all;
}

// The no-learning predictions for the queries of `m`, made from the indexed vectors (`corpus`,
// [rows x dim]) the way lvm's baselines make them from windows: the mean of the query's context
// chunks (linear_average), its last context chunk (persistence), the mean of every indexed
// chunk (corpus_mean). A query whose context chunks are not all indexed has no prediction and
// counts as a miss (its target is set to -1).
std::vector<ModelQueries> baseline_queries(const ModelQueries& m, const std::vector<float>& corpus, std::size_t dim) {
  const std::size_t n = m.targets.size();
  std::vector<ModelQueries> out(3, m);
  out[0].label = "linear_average", out[1].label = "persistence", out[2].label = "corpus_mean";
  std::vector<double> mean(dim, 0.0);
  const std::size_t corpus_rows = corpus.size() / dim;
  for (std::size_t r = 0; r < corpus_rows; ++r)
    for (std::size_t i = 0; i < dim; ++i) mean[i] += corpus[r * dim + i];
  for (auto& q : out) {
    q.input = "baseline";
    q.vectors.assign(n * dim, 0.0f);
  }
  for (std::size_t q = 0; q < n; ++q) {
    const auto& context = m.contexts[q];
    float* linear = out[0].vectors.data() + q * dim;
    bool complete = !context.empty();
    for (std::int64_t row : context) complete &= row >= 0;
    if (complete) {
      for (std::int64_t row : context)
        for (std::size_t i = 0; i < dim; ++i) linear[i] += corpus[static_cast<std::size_t>(row) * dim + i];
      std::copy_n(corpus.data() + static_cast<std::size_t>(context.back()) * dim, dim, out[1].vectors.data() + q * dim);
    } else {
      out[0].targets[q] = out[1].targets[q] = -1;
    }
    for (std::size_t i = 0; i < dim; ++i) out[2].vectors[q * dim + i] = static_cast<float>(mean[i]);
  }
  for (auto& q : out) normalize_rows(q.vectors.data(), n, dim);   // unit length, like lvm's baselines
  return out;
}

// Top-K of `m` on `index` (ranks of its targets into `ranks`), plus Top-K and recall against
// the exact reference when there is one.
ModelScores score_queries(const VectorIndex& index, const std::optional<VectorIndex>& exact, const ModelQueries& m,
                          std::size_t kmax, const EvalOptions& o, const std::string& where,
                          std::vector<std::size_t>& ranks) {
  const SearchHits hits = search_all(index, m, kmax, o, where);
  ranks = target_ranks(hits, m.targets);
  ModelScores s;
  for (std::size_t k : o.ks) s.top.push_back(top_k_accuracy(ranks, k));
  if (exact) {
    const SearchHits exact_hits = search_all(*exact, m, kmax, o, where);
    const auto exact_ranks = target_ranks(exact_hits, m.targets);
    for (std::size_t k : o.ks) {
      s.exact_top.push_back(top_k_accuracy(exact_ranks, k));
      s.recall.push_back(recall_at_k(hits, exact_hits, k));
    }
  }
  return s;
}

// 1 where the target is within the top k, per query.
std::vector<double> hits_at(const std::vector<std::size_t>& ranks, std::size_t k) {
  std::vector<double> out(ranks.size());
  for (std::size_t q = 0; q < ranks.size(); ++q) out[q] = ranks[q] >= 1 && ranks[q] <= k ? 1.0 : 0.0;
  return out;
}

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100.0 * fraction);
  return buf;
}

class EvalStage : public BarrierStage {
 public:
  explicit EvalStage(EvalOptions options) : o_(std::move(options)) {}

  void run(StageContext& ctx, std::vector<StageInput>& inputs, BatchSink& out) override {
    const std::string where = stage_where(ctx, kType);
    if (inputs.size() < 2)
      throw Error(where, "needs a retrieve.index stage and at least one prediction stage",
                  "set `inputs: [<retrieve.index stage>, <lvm.predict stage>, ...]`");
    const std::string index_where = where + ", index '" + inputs[0].name + "'";
    IndexFolder folder = open_index_folder(inputs[0].dir, o_.mmap, o_.nprobe, o_.ef_search, index_where);
    folder.index.set_threads(o_.threads);
    const VectorIndex& index = folder.index;
    std::optional<VectorIndex> exact = load_exact_reference(inputs[0].dir, index, index_where);
    if (exact) exact->set_threads(o_.threads);
    if (!index.exact() && !exact)
      ctx.log("index folder has no vectors.npy: recall against exact search is not measured");
    const auto rows_by_id = folder.chunks.rows_by_id();

    std::map<std::string, ModelQueries> models;   // ordered: input name, then model label
    for (std::size_t i = 1; i < inputs.size(); ++i) {
      if (collect_queries(inputs[i], o_, rows_by_id, models, where) == 0)
        throw Error(where, "input '" + inputs[i].name + "' has no " +
                               (o_.split == "all" ? std::string("") : "'" + o_.split + "' ") + "predictions",
                    o_.split == "all" ? "check that the prediction stage produced rows"
                                      : "set `split: all` or check the windowing stage's split");
    }
    std::map<std::string, int> label_uses;
    for (const auto& [key, m] : models) ++label_uses[m.label];

    const std::size_t kmax = *std::max_element(o_.ks.begin(), o_.ks.end());
    Batch summary;
    std::vector<std::string> table_rows;

    // Baselines on the first model's queries. Every model is compared with the strongest of them
    // at the largest K, where the shares are largest and differences show first
    // (stages/common/baseline_verdict.hpp).
    std::vector<BaselineScore> baselines;
    std::vector<std::int64_t> baseline_targets;
    const ModelQueries& first = models.begin()->second;
    const VectorIndex* flat = index.exact() ? &index : exact ? &*exact : nullptr;
    if (!flat || !first.contexts_known || first.dim != index.dim()) {
      ctx.log("no baseline rows: " + std::string(!flat ? "the index folder has no vectors.npy"
                                                       : first.dim != index.dim() ? "predictions and index differ in width"
                                                                                  : "the queries' context chunks cannot be told"));
    } else {
      const std::vector<ModelQueries> queries = baseline_queries(first, flat->vectors(index_where), index.dim());
      std::vector<ModelScores> scores;
      for (const ModelQueries& b : queries) {
        if (ctx.cancelled()) return;
        std::vector<std::size_t> ranks;
        scores.push_back(score_queries(index, exact, b, kmax, o_, where + ", baseline " + b.label, ranks));
        baselines.push_back({b.label, scores.back().top.back(), hits_at(ranks, kmax)});   // ks sorted: back() = kmax
      }
      baseline_targets = first.targets;
      const std::size_t best = strongest_baseline(baselines);
      Batch not_emitted;   // baselines go into the table and the metrics; the output is one row per model
      for (std::size_t i = 0; i < queries.size(); ++i)
        record(ctx, queries[i].label, queries[i], scores[i], not_emitted, table_rows,
               std::string(i == best ? "strongest baseline" : "baseline"));
    }

    for (auto& [key, m] : models) {
      if (ctx.cancelled()) return;
      const std::string label = label_uses[m.label] > 1 ? m.input + "/" + m.label : m.label;
      const std::string model_where = where + ", model '" + label + "'";
      if (m.dim != index.dim())
        throw Error(model_where, "predictions are " + std::to_string(m.dim) + "-D but the index holds " +
                                     std::to_string(index.dim()) + "-D vectors",
                    "evaluate predictions against an index of the same encoder's vectors");
      if (m.missing_targets == m.targets.size())
        throw Error(model_where, "none of the " + std::to_string(m.targets.size()) +
                                     " target chunk ids is in the index (e.g. '" + m.first_missing + "')",
                    "index the same chunks the predictions were made for");
      check_finite(m.vectors.data(), m.targets.size(), m.dim, model_where,
                   [](std::size_t row) { return "prediction " + std::to_string(row); });

      std::vector<std::size_t> ranks;
      const ModelScores s = score_queries(index, exact, m, kmax, o_, model_where, ranks);
      std::optional<std::string> versus;
      if (!baselines.empty()) {
        // Paired per query when the model answered the same queries as the baselines.
        const BaselineVerdict v = judge_against_baselines(
            s.top.back(), m.targets == baseline_targets ? hits_at(ranks, kmax) : std::vector<double>{}, baselines);
        char cell[96];
        std::snprintf(cell, sizeof cell, "%+.2f pts vs %s: %s", 100.0 * v.gain, v.baseline.c_str(),
                      verdict_word(v.outcome));
        versus = cell;
        ctx.metric("beats_best_baseline", v.outcome == VersusBaseline::Beats ? 1.0 : 0.0, -1, label);
        ctx.log(describe_verdict(label + " Top-" + std::to_string(kmax), s.top.back(), v, true));
      }
      record(ctx, label, m, s, summary, table_rows, versus);
    }

    const std::string table = make_table(index, folder.chunks.size(), exact.has_value(), !baselines.empty(), table_rows);
    ctx.log(table);
    ctx.metric_text("retrieval_topk", table);
    out.emit(std::move(summary));
  }

 private:
  // One table row, its metrics and its summary row. `versus`: the cell of the baselines column
  // (absent when there are no baselines).
  void record(StageContext& ctx, const std::string& label, const ModelQueries& m, const ModelScores& s,
              Batch& summary, std::vector<std::string>& table_rows, const std::optional<std::string>& versus) const {
    const std::size_t kmax_i = static_cast<std::size_t>(
        std::max_element(o_.ks.begin(), o_.ks.end()) - o_.ks.begin());
    std::ostringstream row;
    row << "| " << label << " | " << m.targets.size() << " |";
    summary.ids.push_back(label);
    summary.text["model"].push_back(label);
    summary.text["input"].push_back(m.input);
    summary.ints["queries"].push_back(static_cast<std::int64_t>(m.targets.size()));
    summary.ints["missing_targets"].push_back(static_cast<std::int64_t>(m.missing_targets));
    summary.ints["exclude_context"].push_back(o_.exclude_context ? 1 : 0);
    ctx.metric("queries", static_cast<double>(m.targets.size()), -1, label);
    if (m.missing_targets) ctx.metric("missing_targets", static_cast<double>(m.missing_targets), -1, label);
    for (std::size_t i = 0; i < o_.ks.size(); ++i) {
      const std::string k = std::to_string(o_.ks[i]);
      ctx.metric("top" + k, s.top[i], -1, label);
      summary.reals["top" + k].push_back(s.top[i]);
      row << " " << percent(s.top[i]) << " |";
      if (!s.exact_top.empty()) {
        ctx.metric("exact_top" + k, s.exact_top[i], -1, label);
        ctx.metric("recall" + k, s.recall[i], -1, label);
        summary.reals["exact_top" + k].push_back(s.exact_top[i]);
        summary.reals["recall" + k].push_back(s.recall[i]);
      }
    }
    if (!s.exact_top.empty()) {
      char recall[32];
      std::snprintf(recall, sizeof recall, "%.4f", s.recall[kmax_i]);
      row << " " << percent(s.exact_top[kmax_i]) << " | " << recall << " |";
    }
    if (versus) {
      row << " " << *versus << " |";
      summary.text["versus_best_baseline"].push_back(*versus);
    }
    if (m.missing_targets) row << " (" << m.missing_targets << " targets not in the index)";
    table_rows.push_back(row.str());
  }

  std::string make_table(const VectorIndex& index, std::size_t chunks, bool with_exact, bool with_baselines,
                         const std::vector<std::string>& rows) const {
    const std::string kmax = std::to_string(*std::max_element(o_.ks.begin(), o_.ks.end()));
    std::ostringstream t;
    t << "Top-K retrieval of the true next chunk over " << chunks << " chunks, index "
      << index.describe() << ", " << (o_.split == "all" ? "all" : o_.split) << " predictions, "
      << (o_.exclude_context
              ? "the query's own " + std::to_string(o_.context) + " context chunks excluded"
              : "context chunks not excluded")
      << "\n| model | queries |";
    std::string rule = "|---|---:|";
    for (std::size_t k : o_.ks) {
      t << " Top-" << k << " |";
      rule += "---:|";
    }
    if (with_exact) {
      t << " exact Top-" << kmax << " | recall@" << kmax << " vs exact |";
      rule += "---:|---:|";
    }
    if (with_baselines) {
      t << " Top-" << kmax << " vs strongest baseline |";
      rule += "---|";
    }
    t << "\n" << rule << "\n";
    for (const auto& r : rows) t << r << "\n";
    if (with_baselines)
      t << "Baselines (made from the indexed vectors of each query's " << o_.context
        << " context chunks): linear_average = their mean, persistence = the last one, corpus_mean = the mean "
           "of every indexed chunk. beats / noise / WORSE: the gain over the strongest baseline is above / "
           "within / below the margin max(0.5 pts, 2 standard errors of the per-query hit difference).\n";
    return t.str();
  }

  EvalOptions o_;
};

std::vector<std::size_t> parse_ks(const Params& p) {
  std::vector<std::size_t> ks;
  for (const auto& item : p.get_list("ks")) {
    std::size_t k = 0;
    auto r = std::from_chars(item.data(), item.data() + item.size(), k);
    if (r.ec != std::errc{} || r.ptr != item.data() + item.size() || k == 0)
      throw Error("param ks", "param ks: '" + item + "' is not a positive integer", "set `ks: [1, 5, 10, 20]`");
    ks.push_back(k);
  }
  if (ks.empty()) throw Error("param ks", "param ks is empty", "set `ks: [1, 5, 10, 20]`");
  std::sort(ks.begin(), ks.end());
  ks.erase(std::unique(ks.begin(), ks.end()), ks.end());
  return ks;
}

}  // namespace

void add_retrieve_eval_stage(StageRegistry& registry) {
  StageInfo info;
  info.type = kType;
  info.version = 2;   // 2: baseline rows and the versus_best_baseline column
  info.kind = StageKind::Barrier;
  info.summary =
      "Top-K accuracy of predicted next-chunk vectors (lvm.predict) over the whole indexed "
      "corpus next to the no-learning baselines (each model judged against the strongest), and "
      "recall@K of an approximate index against exact search";
  info.params = {
      {"ks", ParamType::StringList, "[1, 5, 10, 20]", "the K of each Top-K column"},
      {"exclude_context", ParamType::Bool, "false",
       "drop the query's own context chunks (positions target-N..target-1 of its article) from "
       "its results before scoring"},
      {"context", ParamType::Int, "5", "N, the context length of the windows (for exclude_context and the baselines)"},
      {"split", ParamType::String, "val", "which predictions to score: val, train or all"},
      {"nprobe", ParamType::Int, "0", "IVF lists visited per query; 0 = as stored in the index"},
      {"ef_search", ParamType::Int, "0", "HNSW search beam width; 0 = as stored in the index"},
      {"mmap", ParamType::Bool, "true", "memory-map the index where FAISS allows", false, false},
      threads_param_doc(),
  };
  info.min_inputs = 2;
  info.max_inputs = SIZE_MAX;
  info.make = [](const Params& p) -> std::unique_ptr<Stage> {
    EvalOptions o;
    o.ks = parse_ks(p);
    o.exclude_context = p.get_bool("exclude_context");
    o.context = size_param(p, "context");
    o.split = p.get_string("split");
    o.nprobe = size_param(p, "nprobe");
    o.ef_search = size_param(p, "ef_search");
    o.mmap = p.get_bool("mmap");
    o.threads = size_param(p, "threads");
    return std::make_unique<EvalStage>(std::move(o));
  };
  info.validate = [](const Params& p) {
    parse_ks(p);
    require_at_least(p, "context", 0, "5");
    require_at_least(p, "nprobe", 0, "0 or 32");
    require_at_least(p, "ef_search", 0, "0 or 128");
    require_at_least(p, "threads", 0, "0 (all cores) or 1");
    const std::string split = p.get_string("split");
    if (split != "val" && split != "train" && split != "all")
      throw Error("param split", "param split must be val, train or all, got '" + split + "'", "set `split: val`");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow

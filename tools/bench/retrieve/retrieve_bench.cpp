// Benchmark of the retrieve.* index code (VectorIndex, the same code the stages run): build
// time, queries/s at K=20 and recall@20 against exact search for Flat, HNSW and IVF indexes on
// random-but-clustered 768-D vectors, next to the Python ways of doing the same search
// (retrieve_bench_peer.py: numpy, torch and Python FAISS brute force on the same vectors).
//
//   build/tools/bench/retrieve/lvmflow_retrieve_bench [--n 100000] [--queries 4211] [--dim 768]
//       [--clusters 1000] [--k 20] [--nlist 1024] [--workdir DIR] [--no-peer] [--pq]
// --pq adds IVF<nlist>,PQ64 (its training is slow on 2 cores).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/retrieve/vector_index.hpp"

namespace {

using lvmflow::IndexOptions;
using lvmflow::SearchHits;
using lvmflow::VectorIndex;

struct Config {
  std::size_t n = 100000;
  std::size_t queries = 4211;   // the seed's validation set
  std::size_t dim = 768;
  std::size_t clusters = 1000;
  std::size_t k = 20;
  std::size_t nlist = 1024;
  std::size_t seed_corpus = 42113;   // the seed's database size
  std::filesystem::path workdir = std::filesystem::temp_directory_path() / "lvmflow-retrieve-bench";
  bool peer = true;
  bool pq = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of this process, all threads: on a shared machine wall time also counts the
// time other people's processes held the cores; CPU time does not.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Data shaped like GTR-T5 chunk embeddings, clustered at two levels: every vector shares a
// common direction (embeddings are anisotropic), each of `clusters` articles (sizes drawn
// log-normally) belongs to one of 50 topics, and a chunk is
//   0.5 common + 0.6 topic + 0.6 article + 0.8 own noise     (each term a random unit vector),
// giving cosines of about 0.6 within an article, 0.4 within a topic and 0.15 otherwise.
// A query is a chunk plus noise at cosine 0.78 to it: the seed's validation cosine of the
// predicted next vector.
void make_data(const Config& c, std::vector<float>& base, std::vector<float>& queries) {
  std::mt19937_64 rng(20251012);
  std::normal_distribution<float> normal;
  const float unit_scale = 1.0f / std::sqrt(float(c.dim));
  auto random_unit = [&](std::vector<float>& v) {
    v.resize(c.dim);
    for (auto& x : v) x = normal(rng) * unit_scale;
  };
  std::vector<float> common;
  random_unit(common);
  const std::size_t topics = 50;
  std::vector<std::vector<float>> topic(topics), article(c.clusters);
  for (auto& t : topic) random_unit(t);
  std::uniform_int_distribution<std::size_t> pick_topic(0, topics - 1);
  std::lognormal_distribution<double> size(0.0, 1.0);
  std::vector<double> weight(c.clusters);
  for (std::size_t a = 0; a < c.clusters; ++a) {
    random_unit(article[a]);
    const auto& t = topic[pick_topic(rng)];
    for (std::size_t j = 0; j < c.dim; ++j) article[a][j] = 0.5f * common[j] + 0.6f * t[j] + 0.6f * article[a][j];
    weight[a] = size(rng);
  }
  std::discrete_distribution<std::size_t> pick_article(weight.begin(), weight.end());
  base.resize(c.n * c.dim);
  for (std::size_t r = 0; r < c.n; ++r) {
    const auto& a = article[pick_article(rng)];
    for (std::size_t j = 0; j < c.dim; ++j) base[r * c.dim + j] = a[j] + 0.8f * normal(rng) * unit_scale;
  }
  lvmflow::normalize_rows(base.data(), c.n, c.dim);
  // Unit chunk + noise of norm 0.8 (nearly orthogonal in 768-D): cosine 1/sqrt(1.64) = 0.78.
  std::uniform_int_distribution<std::size_t> pick_row(0, c.n - 1);
  queries.resize(c.queries * c.dim);
  for (std::size_t q = 0; q < c.queries; ++q) {
    const float* chunk = base.data() + pick_row(rng) * c.dim;
    for (std::size_t j = 0; j < c.dim; ++j) queries[q * c.dim + j] = chunk[j] + 0.8f * normal(rng) * unit_scale;
  }
}

double recall(const SearchHits& approx, const SearchHits& exact, std::size_t k) {
  double sum = 0;
  for (std::size_t q = 0; q < exact.queries; ++q) {
    std::unordered_set<std::int64_t> truth(exact.rows_of(q), exact.rows_of(q) + k);
    std::size_t found = 0;
    for (std::size_t i = 0; i < k; ++i) found += truth.count(approx.rows_of(q)[i]);
    sum += double(found) / double(k);
  }
  return sum / double(exact.queries);
}

struct Row {
  std::string name;
  double build_s = -1;
  double build_cpu_s = -1;
  double search_s = 0;
  double search_cpu_s = 0;
  std::size_t queries = 0;
  double recall = -1;
  std::uintmax_t bytes = 0;
};

std::vector<Row> rows;

void print_row(const Row& r, double seed_qps_low, double seed_qps_high) {
  const double qps = double(r.queries) / r.search_s;
  char build[48] = "-", rec[32] = "exact", size[32] = "-";
  if (r.build_s >= 0) std::snprintf(build, sizeof build, "%.1f (%.1f)", r.build_s, r.build_cpu_s);
  if (r.recall >= 0) std::snprintf(rec, sizeof rec, "%.4f", r.recall);
  if (r.bytes) std::snprintf(size, sizeof size, "%.0f", double(r.bytes) / 1e6);
  std::printf("| %-34s | %13s | %7s | %6.3f (%6.3f) | %9.0f | %9.0f | %4.2f-%4.2fx | %9s |\n", r.name.c_str(),
              build, size, r.search_s, r.search_cpu_s, qps, double(r.queries) / r.search_cpu_s,
              qps / seed_qps_high, qps / seed_qps_low, rec);
  std::fflush(stdout);
}

// Times one full pass of all queries (after a short warm-up) and records the row.
SearchHits timed_search(const VectorIndex& index, const std::vector<float>& queries, const Config& c,
                        Row row, const SearchHits* exact) {
  index.search(queries.data(), std::min<std::size_t>(64, c.queries), c.dim, c.k, "bench");   // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  SearchHits hits = index.search(queries.data(), c.queries, c.dim, c.k, "bench");
  row.search_s = seconds_since(t0);
  row.search_cpu_s = cpu_seconds() - cpu0;
  row.queries = c.queries;
  if (exact) row.recall = recall(hits, *exact, c.k);
  rows.push_back(row);
  return hits;
}

// Builds an index over the first `count` base rows (a copy: build normalises in place).
VectorIndex timed_build(const std::vector<float>& base, std::size_t count, const Config& c,
                        const IndexOptions& options, Row& row) {
  std::vector<float> data(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(count * c.dim));
  const auto t0 = std::chrono::steady_clock::now();
  const double cpu0 = cpu_seconds();
  VectorIndex index = VectorIndex::build(data, count, c.dim, options, "bench");
  row.build_s = seconds_since(t0);
  row.build_cpu_s = cpu_seconds() - cpu0;
  const auto dir = c.workdir / ("index-" + index.factory());
  std::filesystem::create_directories(dir);
  index.save(dir, "bench");
  row.bytes = std::filesystem::file_size(dir / "index.faiss");
  return index;
}

Config parse_args(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw lvmflow::Error("bench", a + " needs a value");
      return argv[++i];
    };
    if (a == "--n") c.n = std::stoul(next());
    else if (a == "--queries") c.queries = std::stoul(next());
    else if (a == "--dim") c.dim = std::stoul(next());
    else if (a == "--clusters") c.clusters = std::stoul(next());
    else if (a == "--k") c.k = std::stoul(next());
    else if (a == "--nlist") c.nlist = std::stoul(next());
    else if (a == "--workdir") c.workdir = next();
    else if (a == "--no-peer") c.peer = false;
    else if (a == "--pq") c.pq = true;
    else throw lvmflow::Error("bench", "unknown argument " + a, "see the usage at the top of retrieve_bench.cpp");
  }
  c.seed_corpus = std::min(c.seed_corpus, c.n);
  return c;
}

}  // namespace

int main(int argc, char** argv) try {
  const Config c = parse_args(argc, argv);
  std::filesystem::create_directories(c.workdir);
  const unsigned cores = std::thread::hardware_concurrency();
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  std::printf("retrieve bench: %zu base vectors, %zu queries, %zu-D, %zu articles in 50 topics, K=%zu; %u cores, "
              "load average %.2f at start; OMP_NUM_THREADS=%s OMP_WAIT_POLICY=%s\n",
              c.n, c.queries, c.dim, c.clusters, c.k, cores, load,
              std::getenv("OMP_NUM_THREADS") ? std::getenv("OMP_NUM_THREADS") : "(unset)",
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)");
  std::vector<float> base, queries;
  auto t0 = std::chrono::steady_clock::now();
  make_data(c, base, queries);
  std::printf("generated data in %.1f s; writing %s/{base,queries}.npy for the Python peer\n",
              seconds_since(t0), c.workdir.c_str());
  lvmflow::write_npy(c.workdir / "base.npy", {std::int64_t(c.n), std::int64_t(c.dim)}, base.data());
  lvmflow::write_npy(c.workdir / "queries.npy", {std::int64_t(c.queries), std::int64_t(c.dim)}, queries.data());

  // The seed's Python pass: 4,211 queries over 42,113 vectors in 0.2-0.6 s.
  const double seed_qps_low = 4211 / 0.6, seed_qps_high = 4211 / 0.2;
  const std::string recall_header = "recall@" + std::to_string(c.k);
  std::printf("\n| %-34s | %13s | %7s | %15s | %9s | %9s | %11s | %9s |\n", "index (lvmflow C++, FAISS 1.7.3)",
              "build s (CPU)", "size MB", "search s (CPU)", "queries/s", "q/CPU-s", "vs seed", recall_header.c_str());
  std::printf("|%s|--------------:|--------:|----------------:|----------:|----------:|------------:|----------:|\n",
              std::string(36, '-').c_str());

  IndexOptions flat;
  SearchHits exact;
  {
    Row row{"Flat (exact), " + std::to_string(c.seed_corpus) + " vectors"};
    VectorIndex index = timed_build(base, c.seed_corpus, c, flat, row);
    timed_search(index, queries, c, row, nullptr);
    print_row(rows.back(), seed_qps_low, seed_qps_high);
  }
  {
    Row row{"Flat (exact)"};
    VectorIndex index = timed_build(base, c.n, c, flat, row);
    exact = timed_search(index, queries, c, row, nullptr);
    print_row(rows.back(), seed_qps_low, seed_qps_high);
    std::vector<float> truth(exact.rows.begin(), exact.rows.end());   // row numbers < 2^24: exact
    lvmflow::write_npy(c.workdir / "exact_top_k.npy", {std::int64_t(c.queries), std::int64_t(c.k)}, truth.data());
  }
  {
    IndexOptions o;
    o.index = "HNSW";
    o.hnsw_m = 32;
    o.ef_construction = 40;
    Row row{"HNSW32"};
    VectorIndex index = timed_build(base, c.n, c, o, row);
    for (std::size_t ef : {16, 32, 64, 128}) {
      index.set_ef_search(ef, "bench");
      Row r = row;
      r.name = "HNSW32, efSearch " + std::to_string(ef);
      timed_search(index, queries, c, r, &exact);
      print_row(rows.back(), seed_qps_low, seed_qps_high);
      row.build_s = -1;   // built once, shown on the first row
      row.bytes = 0;
    }
  }
  for (const char* codec : {"Flat", "PQ64"}) {
    if (std::string(codec) == "PQ64" && !c.pq) continue;
    IndexOptions o;
    o.index = std::string("IVF,") + codec;
    o.nlist = c.nlist;
    Row row{""};
    VectorIndex index = timed_build(base, c.n, c, o, row);
    for (std::size_t nprobe : {1, 4, 16, 64}) {
      index.set_nprobe(nprobe, "bench");
      Row r = row;
      r.name = index.factory() + ", nprobe " + std::to_string(nprobe);
      timed_search(index, queries, c, r, &exact);
      print_row(rows.back(), seed_qps_low, seed_qps_high);
      row.build_s = -1;
      row.bytes = 0;
    }
  }
  std::printf("\nvs seed: queries/s divided by the seed's 4,211 queries per 0.6 s .. 0.2 s (%.0f .. %.0f q/s)\n",
              seed_qps_low, seed_qps_high);
  base.clear();
  base.shrink_to_fit();

  if (c.peer) {
    const std::string cmd = std::string("/usr/bin/python3 ") + LVMFLOW_SOURCE_DIR +
                            "/tools/bench/retrieve/retrieve_bench_peer.py " + c.workdir.string() + " " +
                            std::to_string(c.k) + " " + std::to_string(c.seed_corpus);
    std::printf("\nPython peer, same vectors and queries (%s):\n", cmd.c_str());
    std::fflush(stdout);
    if (std::system(cmd.c_str()) != 0) std::printf("(Python peer failed)\n");
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "lvmflow_retrieve_bench: %s\n", e.what());
  return 1;
}

// retrieve.index and retrieve.search: exact results against brute force, ids and texts back,
// approximate index types, the files on disk (mmap, Python), and bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/error.hpp"
#include "stages/retrieve/chunk_table.hpp"
#include "stages/retrieve/vector_index.hpp"
#include "tests/stages/common/python_helpers.hpp"
#include "tests/stages/retrieve/retrieve_fixture.hpp"

namespace lvmflow {
namespace {

using testing::brute_force_top_k;
using testing::build_index;
using testing::clustered_chunks;
using testing::concat;
using testing::TestContext;

// Query vectors: each a noisy copy of a corpus row, ids "q<row>".
Batch queries_near(const Batch& corpus, const std::vector<std::size_t>& rows, float noise, unsigned seed = 3) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Batch q;
  q.dim = corpus.dim;
  for (std::size_t r : rows) {
    q.ids.push_back("q" + std::to_string(r));
    for (std::size_t j = 0; j < corpus.dim; ++j) q.vectors.push_back(corpus.vector(r)[j] + noise * normal(rng));
  }
  return q;
}

// Runs retrieve.search over `queries` against the index folder of `index_ctx`.
Batch search(const TestContext& index_ctx, const Batch& queries,
             const std::map<std::string, std::string>& params = {}) {
  TestContext ctx("retrieve.search", params);
  ctx.add_input("queries", {});
  ctx.add_input("index", index_ctx.artifact_dir());
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  Batch out = map.process(ctx, queries);
  map.finish(ctx);
  return out;
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Fraction of the brute-force top-k chunk ids found in the stage's top-k, per query.
double recall_vs_brute_force(const Batch& corpus, const Batch& queries, const Batch& results, std::size_t k) {
  std::map<std::string, std::set<std::string>> found;
  for (std::size_t i = 0; i < results.rows(); ++i)
    found[results.text_column("query_id")[i]].insert(results.text_column("chunk_id")[i]);
  double sum = 0;
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    std::size_t hit = 0;
    for (const auto& h : brute_force_top_k(corpus, queries.vector(q), k)) hit += found[queries.ids[q]].count(corpus.ids[h.row]);
    sum += double(hit) / double(k);
  }
  return sum / double(queries.rows());
}

TEST(RetrieveIndex, FactoryStringsFromIndexNames) {
  IndexOptions o;
  EXPECT_EQ(faiss_factory_string(o, 10000), "Flat");
  o.index = "IVF";
  EXPECT_EQ(faiss_factory_string(o, 10000), "IVF256,Flat");   // min(4*sqrt(1e4)=400, 10000/39=256)
  EXPECT_EQ(faiss_factory_string(o, 1000000), "IVF4000,Flat");
  o.nlist = 64;
  EXPECT_EQ(faiss_factory_string(o, 10000), "IVF64,Flat");
  o.index = "IVF,PQ16";
  EXPECT_EQ(faiss_factory_string(o, 10000), "IVF64,PQ16");
  o.index = "HNSW";
  o.hnsw_m = 16;
  EXPECT_EQ(faiss_factory_string(o, 10000), "HNSW16");
  o.index = "IVF1024,PQ64";
  EXPECT_EQ(faiss_factory_string(o, 10000), "IVF1024,PQ64");
  EXPECT_EQ(auto_nlist(10), 1u);
}

TEST(RetrieveIndex, FlatSearchMatchesBruteForceAndMapsIdsAndTexts) {
  const auto chunks = clustered_chunks(12, 10, 48);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks);
  const auto dir = index_ctx->artifact_dir();

  EXPECT_TRUE(std::filesystem::exists(dir / "index.faiss"));
  EXPECT_EQ(read_lines(dir / "ids.txt"), corpus.ids);
  EXPECT_FALSE(std::filesystem::exists(dir / "vectors.npy")) << "an exact index needs no reference copy";
  EXPECT_EQ(index_ctx->metric_value("vectors"), 120.0);

  const Batch queries = queries_near(corpus, {0, 17, 55, 119}, 0.5f);
  const std::size_t k = 7;
  Batch out = search(*index_ctx, queries, {{"k", std::to_string(k)}});
  ASSERT_EQ(out.rows(), queries.rows() * k);
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    const auto expected = brute_force_top_k(corpus, queries.vector(q), k);
    for (std::size_t i = 0; i < k; ++i) {
      const std::size_t row = q * k + i;
      const std::size_t truth = expected[i].row;
      EXPECT_EQ(out.ids[row], queries.ids[q] + "/" + std::to_string(i + 1));
      EXPECT_EQ(out.text_column("query_id")[row], queries.ids[q]);
      EXPECT_EQ(out.int_column("rank")[row], static_cast<std::int64_t>(i + 1));
      EXPECT_EQ(out.text_column("chunk_id")[row], corpus.ids[truth]) << "query " << q << " rank " << i + 1;
      EXPECT_EQ(out.text_column("chunk_text")[row], corpus.text_column("text")[truth]);
      EXPECT_NEAR(out.real_column("score")[row], expected[i].cosine, 1e-5);
    }
  }
}

TEST(RetrieveIndex, InnerProductWithoutNormalisation) {
  const auto chunks = clustered_chunks(4, 8, 16);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks, {{"normalize", "false"}});
  Batch q = queries_near(corpus, {5}, 0.3f);
  Batch out = search(*index_ctx, q, {{"k", "1"}});
  double best = -1e30;
  std::size_t best_row = 0;
  for (std::size_t r = 0; r < corpus.rows(); ++r) {
    double dot = 0;
    for (std::size_t j = 0; j < corpus.dim; ++j) dot += double(q.vectors[j]) * corpus.vector(r)[j];
    if (dot > best) best = dot, best_row = r;
  }
  ASSERT_EQ(out.rows(), 1u);
  EXPECT_EQ(out.text_column("chunk_id")[0], corpus.ids[best_row]);
  EXPECT_NEAR(out.real_column("score")[0], best, 1e-3 * std::abs(best));
}

TEST(RetrieveIndex, IvfWithAllListsProbedIsExactAndLoadsByMmap) {
  const auto chunks = clustered_chunks(16, 25, 32);
  const Batch corpus = concat(chunks);
  auto index_ctx = build_index(chunks, {{"index", "IVF"}, {"nlist", "8"}, {"nprobe", "2"}, {"threads", "0"}});
  const auto dir = index_ctx->artifact_dir();
  EXPECT_TRUE(std::filesystem::exists(dir / "vectors.npy")) << "approximate indexes keep an exact reference";

  VectorIndex mapped = VectorIndex::load(dir, true, "test");
  VectorIndex read = VectorIndex::load(dir, false, "test");
  EXPECT_TRUE(mapped.memory_mapped());
  EXPECT_FALSE(read.memory_mapped());
  EXPECT_EQ(mapped.describe(), "IVF8,Flat (nprobe 2)");
  const Batch queries = queries_near(corpus, {3, 77, 250, 399}, 0.4f);
  const auto a = mapped.search(queries.vectors.data(), queries.rows(), queries.dim, 10, "test");
  const auto b = read.search(queries.vectors.data(), queries.rows(), queries.dim, 10, "test");
  EXPECT_EQ(a.rows, b.rows);

  // Probing every list makes IVF-Flat exhaustive: the exact top-k.
  Batch out = search(*index_ctx, queries, {{"k", "10"}, {"nprobe", "8"}});
  EXPECT_DOUBLE_EQ(recall_vs_brute_force(corpus, queries, out, 10), 1.0);
}

TEST(RetrieveIndex, HnswAndIvfPqFindTheClusterNeighbours) {
  const auto chunks = clustered_chunks(20, 30, 32);
  const Batch corpus = concat(chunks);
  std::vector<std::size_t> rows;
  for (std::size_t r = 0; r < corpus.rows(); r += 37) rows.push_back(r);
  const Batch queries = queries_near(corpus, rows, 0.2f);

  auto hnsw = build_index(chunks, {{"index", "HNSW"}, {"hnsw_m", "16"}, {"ef_search", "128"}});
  Batch hnsw_out = search(*hnsw, queries, {{"k", "10"}});
  EXPECT_GE(recall_vs_brute_force(corpus, queries, hnsw_out, 10), 0.95);
  EXPECT_THROW(search(*hnsw, queries, {{"nprobe", "4"}}), Error) << "nprobe does not apply to HNSW";

  // 4-bit codes: 16 centroids per sub-quantizer suit a 600-vector training set.
  auto pq = build_index(chunks, {{"index", "IVF,PQ8x4"}, {"nlist", "10"}, {"nprobe", "10"}});
  EXPECT_NE(pq->logs.at(0).find("IVF10,PQ8x4"), std::string::npos) << pq->logs.at(0);
  Batch pq_out = search(*pq, queries, {{"k", "10"}});
  ASSERT_EQ(pq_out.rows(), queries.rows() * 10);
  // PQ codes are lossy, but the nearest chunk must still come from the query's own article.
  for (std::size_t q = 0; q < queries.rows(); ++q) {
    const std::size_t row = std::stoul(queries.ids[q].substr(1));   // ids are "q<row>"
    const std::string top = pq_out.text_column("chunk_id")[q * 10];
    EXPECT_EQ(top.substr(0, top.find(':')), corpus.ids[row].substr(0, corpus.ids[row].find(':')));
  }
}

TEST(RetrieveIndex, TextsSurviveTabsNewlinesAndUnicodeAndMayBeAbsent) {
  auto chunks = clustered_chunks(3, 4, 8);
  const Batch corpus = concat(chunks);
  auto with_text = build_index(chunks);
  ChunkTable table = ChunkTable::open(with_text->artifact_dir(), "test");
  ASSERT_EQ(table.size(), corpus.rows());
  for (std::size_t r = 0; r < corpus.rows(); ++r) EXPECT_EQ(table.text(r), corpus.text_column("text")[r]);

  for (auto& b : chunks) b.text.clear();
  auto without_text = build_index(chunks);
  ChunkTable empty = ChunkTable::open(without_text->artifact_dir(), "test");
  EXPECT_EQ(empty.text(5), "");
  EXPECT_EQ(empty.id(5), corpus.ids[5]);
}

TEST(RetrieveIndex, PythonFaissReadsTheIndexFile) {
  if (!testing::python_has("faiss numpy")) GTEST_SKIP() << "python3-faiss is not installed";
  const auto chunks = clustered_chunks(6, 10, 24);
  std::vector<std::unique_ptr<TestContext>> indexes;
  std::string folders;
  for (const char* type : {"Flat", "HNSW", "IVF"}) {
    indexes.push_back(build_index(chunks, {{"index", type}, {"nlist", "4"}}));
    folders += " " + indexes.back()->artifact_dir().string();
  }
  // Python searches with chunk row 42's own (normalised) vector: its top hit must be row 42.
  const std::string cmd = std::string(testing::python_exe()) + " " + LVMFLOW_SOURCE_DIR +
                          "/tests/stages/retrieve/read_index_check.py 60 24 42" + folders;
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

TEST(RetrieveIndex, BadInputGivesClearErrors) {
  const auto chunks = clustered_chunks(4, 10, 16);
  const Batch corpus = concat(chunks);
  auto expect_error = [](auto&& f, const std::string& fragment) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one mentioning '" << fragment << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  // Empty vector sets.
  expect_error([] { build_index({}); }, "no rows to index");
  auto no_vectors = chunks;
  for (auto& b : no_vectors) b.dim = 0, b.vectors.clear();
  expect_error([&] { build_index(no_vectors); }, "carries no vectors");
  // Bad vectors and ids.
  auto nan = chunks;
  nan[1].vectors[5] = std::nanf("");
  expect_error([&] { build_index(nan); }, "non-finite");
  auto twice = chunks;
  twice[1].ids[0] = twice[0].ids[0];
  expect_error([&] { build_index(twice); }, "appears twice");
  // Index types FAISS cannot make.
  expect_error([&] { build_index(chunks, {{"index", "NoSuchIndex"}}); }, "creating FAISS index 'NoSuchIndex'");
  expect_error([&] { build_index(chunks, {{"index", "IVF,PQ5"}}); }, "multiple of the number of subquantizers");
  expect_error([&] { build_index(chunks, {{"index", "IVF"}, {"nlist", "100"}}); }, "100 lists over only 40");
  expect_error([&] { TestContext("retrieve.index", {{"hnsw_m", "1"}}); }, "hnsw_m");

  auto index_ctx = build_index(chunks);
  const auto dir = index_ctx->artifact_dir();
  // Dimension mismatch and vector-less queries.
  Batch wrong_dim = queries_near(concat(clustered_chunks(1, 2, 8)), {0}, 0.1f);
  expect_error([&] { search(*index_ctx, wrong_dim); }, "query vectors are 8-D but the index holds 16-D");
  Batch no_vec;
  no_vec.ids = {"q"};
  expect_error([&] { search(*index_ctx, no_vec); }, "carries no vectors");
  Batch empty;
  empty.dim = 16;
  EXPECT_EQ(search(*index_ctx, empty).rows(), 0u) << "an empty batch is not an error in a stream";

  // Damaged files.
  {
    std::ofstream(dir / "texts.bin", std::ios::binary | std::ios::trunc) << "LVMTXT01";
    expect_error([&] { search(*index_ctx, queries_near(corpus, {0}, 0.1f)); }, "texts.bin is damaged");
  }
  {
    std::ofstream(dir / "index.faiss", std::ios::binary | std::ios::trunc) << "definitely not a FAISS index";
    expect_error([&] { search(*index_ctx, queries_near(corpus, {0}, 0.1f)); }, "reading FAISS index");
  }
  {
    // A real index file cut short.
    auto other = build_index(chunks);
    const auto path = other->artifact_dir() / "index.faiss";
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size / 2);
    expect_error([&] { search(*other, queries_near(corpus, {0}, 0.1f)); }, "reading FAISS index");
    std::filesystem::remove(path);
    expect_error([&] { search(*other, queries_near(corpus, {0}, 0.1f)); }, "missing");
  }
  TestContext lonely("retrieve.search");
  lonely.add_input("queries", {});
  auto stage = lonely.make_stage();
  expect_error([&] { dynamic_cast<MapStage&>(*stage).start(lonely); }, "needs two inputs");
}

}  // namespace
}  // namespace lvmflow

// Issue 11: each vector stored once (batches.bin refers to vectors.npy), barriers that stream
// their committed inputs, re-batching that cannot starve its source, and schema-1 stores.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <fstream>
#include <random>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "pipeline/vector_file.hpp"
#include "tests/pipeline/pipeline_fixture.hpp"

namespace lvmflow::testing {
namespace {

namespace fs = std::filesystem;

Batch random_rows(std::size_t first, std::size_t rows, std::size_t dim, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  Batch b;
  b.dim = dim;
  for (std::size_t r = 0; r < rows; ++r) {
    b.ids.push_back("row-" + std::to_string(first + r));
    b.ints["value"].push_back(static_cast<std::int64_t>(first + r));
    for (std::size_t j = 0; j < dim; ++j) b.vectors.push_back(normal(rng));
  }
  return b;
}

// vectors.npy written as a stage with StageInfo::vectors_file writes it.
void write_npy_rows(const fs::path& path, const std::vector<Batch>& batches, std::size_t dim) {
  std::size_t rows = 0;
  for (const auto& b : batches) rows += b.rows();
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(dim) + "), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const char len[2] = {static_cast<char>(header.size() & 0xff), static_cast<char>(header.size() >> 8)};
  out.write(len, 2);
  out << header;
  for (const auto& b : batches) out.write(reinterpret_cast<const char*>(b.vectors.data()), b.vectors.size() * sizeof(float));
}

TEST(BatchesBin, RecordsReferToVectorsNpyInsteadOfCopyingThem) {
  const auto dir = make_temp_dir("lvmflow-batches");
  std::mt19937 rng(7);
  const std::size_t dim = 768;
  std::vector<Batch> batches = {random_rows(0, 100, dim, rng), random_rows(100, 37, dim, rng)};
  write_npy_rows(dir / "vectors.npy", batches, dim);
  {
    std::ofstream out(dir / "batches.bin", std::ios::binary);
    write_batch(out, batches[0], 0);
    write_batch(out, batches[1], 100);
  }
  // The artifact holds the vectors once: batches.bin is a small fraction of vectors.npy.
  const auto vector_bytes = fs::file_size(dir / "vectors.npy");
  EXPECT_LT(fs::file_size(dir / "batches.bin") * 50, vector_bytes);

  // Readers gather the rows back exactly, or skip them when asked to.
  ArtifactReader reader(dir);
  Batch b;
  for (const auto& expected : batches) {
    ASSERT_TRUE(reader.next(b));
    EXPECT_EQ(b.ids, expected.ids);
    EXPECT_EQ(b.dim, dim);
    EXPECT_EQ(b.vectors, expected.vectors);
  }
  EXPECT_FALSE(reader.next(b));
  ArtifactReader without(dir, /*with_vectors=*/false);
  ASSERT_TRUE(without.next(b));
  ASSERT_TRUE(without.next(b));
  EXPECT_EQ(b.dim, 0u);
  EXPECT_EQ(b.vector_file_row, 100);
  EXPECT_EQ(b.int_column("value").back(), 136);

  // A vectors.npy that does not match the records is an error, not a misread.
  write_npy_rows(dir / "vectors.npy", {batches[0]}, dim);
  ArtifactReader short_file(dir);
  ASSERT_TRUE(short_file.next(b));
  EXPECT_THROW(short_file.next(b), Error);
  fs::remove_all(dir);
}

using ScaleRunTest = PipelineFixture;

// Map re-batching to more rows than the source's batches in flight can hold used to keep
// every token and wait forever for rows the source could not send.
TEST_F(ScaleRunTest, RebatchingLargerThanTheBatchesInFlightFinishes) {
  auto s = spec(R"(pipeline: rebatch
store: store
stages:
  - {name: numbers, type: testing.sequence, params: {count: 300}, batch_size: 4}
  - {name: squares, type: testing.map, inputs: [numbers], params: {op: square}, batch_size: 100}
  - {name: total, type: testing.collect, inputs: [squares]}
)");
  auto r = run(s, {}, 2);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  // sum of i^2 for i < 300
  EXPECT_EQ(summary(s, r.plan.stages.back().key), "squares 8955050 300\n");
}

// A barrier reads its inputs from their committed artifacts: the same result whether the
// input ran in this run or is replayed from the store, and the barrier's inbox keeps nothing.
TEST_F(ScaleRunTest, BarrierStreamsCommittedInputs) {
  const char* yaml = R"(pipeline: stream
store: store
stages:
  - {name: numbers, type: testing.sequence, params: {count: 5000}, batch_size: 7}
  - {name: doubled, type: testing.map, inputs: [numbers], params: {op: multiply, operand: 2}}
  - {name: total, type: testing.collect, inputs: [doubled, numbers]}
)";
  auto s = spec(yaml);
  auto first = run(s, {}, 2);
  ASSERT_EQ(first.status, "succeeded") << first.error;
  const std::string expected = "doubled 24995000 5000\nnumbers 12497500 5000\n";
  EXPECT_EQ(summary(s, first.plan.stages.back().key), expected);
  PlanOptions force;
  force.force = {"total"};
  auto second = run(s, force, 2);
  ASSERT_EQ(second.status, "succeeded") << second.error;
  auto a = actions(s, second.run_id);
  EXPECT_EQ(a["doubled"], "replay");
  EXPECT_EQ(a["total"], "run");
  EXPECT_EQ(summary(s, second.plan.stages.back().key), expected);
}

// A format-1 record (schema-1 stores): vectors inline, no storage word, no compression.
void write_v1_record(std::ostream& out, const Batch& b) {
  std::string body;
  auto u64 = [&](std::uint64_t v) { body.append(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& s) { u64(s.size()); body += s; };
  u64(b.seq);
  u64(b.rows());
  for (const auto& id : b.ids) str(id);
  u64(0);   // text columns
  u64(1);   // int columns
  str("value");
  body.append(reinterpret_cast<const char*>(b.ints.at("value").data()), b.rows() * 8);
  u64(0);   // real columns
  u64(b.dim);
  body.append(reinterpret_cast<const char*>(b.vectors.data()), b.vectors.size() * 4);
  const std::uint64_t frame[3] = {0x314843544142564cULL, body.size(), fnv1a64(body)};
  out.write(reinterpret_cast<const char*>(frame), sizeof frame);
  out << body;
}

TEST_F(ScaleRunTest, SchemaOneStoreIsMigratedAndItsRecordsReadAsWritten) {
  const char* yaml = R"(pipeline: old
store: store
stages:
  - {name: numbers, type: testing.sequence, params: {count: 20}, batch_size: 10}
  - {name: total, type: testing.collect, inputs: [numbers]}
)";
  auto s = spec(yaml);
  ASSERT_EQ(run(s).status, "succeeded");
  // Turn the store into what the previous lvmflow left: schema 1, format-1 records.
  std::string numbers_key;
  {
    Store store(s.store);
    numbers_key = store.stage_runs(1).front().key;
    std::mt19937 rng(3);
    std::ofstream out(store.artifact_path(numbers_key) / "batches.bin", std::ios::binary | std::ios::trunc);
    write_v1_record(out, random_rows(0, 10, 4, rng));
    write_v1_record(out, random_rows(10, 10, 4, rng));
  }
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((fs::path(s.store) / "lvmflow.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value='1' WHERE key='schema_version'", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  PlanOptions force;
  force.force = {"total"};
  auto r = run(s, force);
  ASSERT_EQ(r.status, "succeeded") << r.error;
  EXPECT_EQ(actions(s, r.run_id)["numbers"], "replay");
  // ids row-0..row-19 carry values 0..19: the old records were read exactly.
  EXPECT_EQ(summary(s, r.plan.stages.back().key), "numbers 190 20\n");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((fs::path(s.store) / "lvmflow.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, nullptr);
    ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))), std::to_string(kStoreSchemaVersion));
    sqlite3_finalize(st);
    // A store from a newer lvmflow is refused with one clear line.
    sqlite3_exec(db, "UPDATE meta SET value='99' WHERE key='schema_version'", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  try {
    Store newer(s.store);
    FAIL() << "a newer store was opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("newer than this lvmflow"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lvmflow::testing

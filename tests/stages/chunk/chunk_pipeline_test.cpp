// End to end through the real engine: `lvmflow run` on a two-stage pipeline over the fixture
// dump, then the store's chunks table read back with SQLite.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "pipeline/hash.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

struct StoredChunk {
  std::string id, text, hash, section;
  std::int64_t article_id, index;
};

std::vector<StoredChunk> stored_chunks(const std::filesystem::path& db_path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db,
                               "SELECT chunk_id, article_id, chunk_index, section, text, hash FROM chunks "
                               "ORDER BY position",
                               -1, &st, nullptr),
            SQLITE_OK);
  std::vector<StoredChunk> out;
  auto text = [&](int col) { return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, col))); };
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back({text(0), text(4), text(5), text(3), sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2)});
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

TEST(ChunkPipeline, LvmflowRunStoresChunksInOrder) {
  auto dir = testing::make_temp_dir("lvmflow-chunk-e2e");
  auto dump = std::filesystem::path(LVMFLOW_SOURCE_DIR) / "tests/stages/ingest/fixtures/sample-pages-articles.xml.bz2";
  {
    std::ofstream yaml(dir / "p.yaml");
    yaml << "pipeline: chunks-e2e\nstore: store\nstages:\n"
            "  - name: articles\n    type: ingest.wikipedia\n    params: {path: " << dump.string() << "}\n"
            "    batch_size: 1\n"
            "  - name: chunks\n    type: chunk.text\n    inputs: [articles]\n    concurrency: 2\n";
  }
  std::string cmd = std::string(LVMFLOW_BINARY) + " run " + (dir / "p.yaml").string() + " > " +
                    (dir / "log.txt").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto chunks = stored_chunks(dir / "store" / "lvmflow.db");
  ASSERT_GT(chunks.size(), 20u);
  std::map<std::int64_t, std::int64_t> next_index;
  std::int64_t last_article = -1;
  for (const auto& c : chunks) {
    // Articles arrive whole and in dump order; positions count up within each.
    if (c.article_id != last_article) {
      EXPECT_EQ(next_index.count(c.article_id), 0u) << "article " << c.article_id << " interleaved";
      last_article = c.article_id;
    }
    EXPECT_EQ(c.index, next_index[c.article_id]++);
    EXPECT_EQ(c.id, std::to_string(c.article_id) + ":" + std::to_string(c.index));
    EXPECT_EQ(c.hash, sha256_hex(c.text));
  }
  EXPECT_EQ(next_index.size(), 3u);
  // Same chunks as the stages give when run alone: byte for byte.
  testing::TestContext ingest_ctx("ingest.wikipedia", {{"path", dump.string()}});
  auto source = ingest_ctx.make_stage();
  auto sections = testing::drain_source(dynamic_cast<SourceStage&>(*source), ingest_ctx, 3);
  testing::TestContext chunk_ctx("chunk.text");
  auto map = chunk_ctx.make_stage();
  std::vector<std::string> direct;
  for (const auto& b : sections) {
    Batch out = dynamic_cast<MapStage&>(*map).process(chunk_ctx, b);
    direct.insert(direct.end(), out.text_column("text").begin(), out.text_column("text").end());
  }
  ASSERT_EQ(direct.size(), chunks.size());
  for (std::size_t i = 0; i < direct.size(); ++i) EXPECT_EQ(direct[i], chunks[i].text);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace lvmflow

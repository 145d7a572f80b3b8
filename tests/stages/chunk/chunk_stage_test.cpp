// chunk.text through the registry, fed by ingest.wikipedia as in a pipeline.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "pipeline/error.hpp"
#include "pipeline/hash.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow {
namespace {

using testing::TestContext;

std::filesystem::path fixture_dump() {
  return std::filesystem::path(LVMFLOW_SOURCE_DIR) / "tests/stages/ingest/fixtures/sample-pages-articles.xml";
}

std::vector<Batch> ingest(std::size_t batch_size) {
  TestContext ctx("ingest.wikipedia", {{"path", fixture_dump().string()}});
  auto stage = ctx.make_stage();
  return testing::drain_source(dynamic_cast<SourceStage&>(*stage), ctx, batch_size);
}

// Runs chunk.text over `in` the way the engine does: process, then consume_ordered in order.
std::vector<Batch> chunk(TestContext& ctx, const std::vector<Batch>& in) {
  auto stage = ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  map.start(ctx);
  std::vector<Batch> out;
  for (const auto& b : in) out.push_back(map.process(ctx, b));
  for (const auto& b : out) map.consume_ordered(ctx, b);
  map.finish(ctx);
  return out;
}

TEST(ChunkTextStage, ChunksCarryIdsPositionsMetadataAndHashes) {
  TestContext ctx("chunk.text");
  auto batches = chunk(ctx, ingest(2));
  std::map<std::int64_t, std::int64_t> next_position;
  std::size_t total = 0;
  for (const auto& b : batches) {
    b.check_consistent("test");
    for (std::size_t r = 0; r < b.rows(); ++r) {
      auto article = b.int_column("article_id")[r];
      auto position = b.int_column("position")[r];
      EXPECT_EQ(position, next_position[article]++) << "positions run 0, 1, 2... per article";
      EXPECT_EQ(b.ids[r], std::to_string(article) + ":" + std::to_string(position));
      const auto& text = b.text_column("text")[r];
      EXPECT_EQ(b.text_column("hash")[r], sha256_hex(text));
      EXPECT_FALSE(b.text_column("title")[r].empty());
      for (const char* token : {"{{", "}}", "[[", "|}", "<ref", "&nbsp;", "'''"})
        EXPECT_EQ(text.find(token), std::string::npos) << token << " in " << text;
      ++total;
    }
  }
  EXPECT_EQ(next_position.size(), 3u);
  EXPECT_GT(total, 20u);
  EXPECT_EQ(ctx.metric_value("chunks"), static_cast<double>(total));
  // The store gets every chunk batch, in order.
  ASSERT_EQ(ctx.chunks.size(), batches.size());
  for (std::size_t i = 0; i < batches.size(); ++i) EXPECT_EQ(ctx.chunks[i].ids, batches[i].ids);
}

TEST(ChunkTextStage, SectionsAreKeptAndChunksStayWithinLimits) {
  TestContext ctx("chunk.text", {{"target_words", "20"}, {"min_words", "5"}, {"max_words", "30"}});
  auto batches = chunk(ctx, ingest(64));
  std::set<std::string> sections;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.rows(); ++r) {
      std::size_t words = 0;
      bool in_word = false;
      for (char c : b.text_column("text")[r]) {
        if (c != ' ' && !in_word) ++words;
        in_word = c != ' ';
      }
      EXPECT_LE(words, 30u) << b.text_column("text")[r];
      sections.insert(b.text_column("section")[r]);
    }
  EXPECT_TRUE(sections.count("Keepers and automation"));
  EXPECT_TRUE(sections.count(""));
  EXPECT_FALSE(sections.count("References"));
}

TEST(ChunkTextStage, SameInputSameChunksWhateverTheBatching) {
  TestContext a("chunk.text"), b("chunk.text");
  auto one = chunk(a, ingest(1)), many = chunk(b, ingest(64));
  Batch all_one = one[0], all_many = many[0];
  for (std::size_t i = 1; i < one.size(); ++i) all_one.append(one[i]);
  for (std::size_t i = 1; i < many.size(); ++i) all_many.append(many[i]);
  EXPECT_EQ(all_one.ids, all_many.ids);
  EXPECT_EQ(all_one.text, all_many.text);
  EXPECT_EQ(all_one.ints, all_many.ints);
}

TEST(ChunkTextStage, CountsT5TokensWithASentencepieceModel) {
  auto dir = testing::make_temp_dir("lvmflow-chunk-spm");
  std::string corpus = (dir / "corpus.txt").string(), prefix = (dir / "m").string();
  {
    std::ofstream out(corpus);
    for (int i = 0; i < 200; ++i)
      out << "the lighthouse keeper trimmed the wick " << i << " times before the storm came\n";
  }
  std::string cmd = "/usr/bin/python3 -c \"import sentencepiece as s; s.SentencePieceTrainer.train(input='" +
                    corpus + "', model_prefix='" + prefix + "', vocab_size=40, minloglevel=2)\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  TestContext words("chunk.text", {{"target_words", "20"}, {"min_words", "5"}, {"max_words", "40"}});
  TestContext tokens("chunk.text", {{"target_words", "20"}, {"min_words", "5"}, {"max_words", "40"},
                                    {"tokenizer", prefix + ".model"}});
  auto input = ingest(64);
  auto by_words = chunk(words, input), by_tokens = chunk(tokens, input);
  // A tiny vocabulary splits words into several pieces: more, shorter chunks by token count.
  EXPECT_GT(tokens.metric_value("chunks"), words.metric_value("chunks"));
  EXPECT_LE(tokens.metric_value("chunk_mean_tokens"), 40);
  std::filesystem::remove_all(dir);
  EXPECT_THROW(TestContext("chunk.text", {{"tokenizer", (dir / "none.model").string()}}), Error);
}

TEST(ChunkTextStage, LimitsAreChecked) {
  EXPECT_THROW(TestContext("chunk.text", {{"min_words", "50"}}), Error);
  EXPECT_THROW(TestContext("chunk.text", {{"target_words", "100"}}), Error);
  EXPECT_THROW(TestContext("chunk.text", {{"min_words", "0"}}), Error);
  EXPECT_NO_THROW(TestContext("chunk.text", {{"target_words", "80"}, {"max_words", "80"}}));
}

TEST(ChunkTextStage, ABatchThatSplitsAnArticleIsRefused) {
  auto input = ingest(64);
  ASSERT_GT(input[0].rows(), 2u);
  Batch tail = input[0].slice(1, input[0].rows());
  TestContext ctx("chunk.text");
  auto stage = ctx.make_stage();
  try {
    dynamic_cast<MapStage&>(*stage).process(ctx, tail);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("middle of article"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos) << e.what();
  }
}

TEST(ChunkTextStage, MissingInputColumnsAreNamed) {
  TestContext ctx("chunk.text");
  auto stage = ctx.make_stage();
  Batch wrong;
  wrong.ids = {"x"};
  wrong.text["body"] = {"text"};
  try {
    dynamic_cast<MapStage&>(*stage).process(ctx, wrong);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("title"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lvmflow

namespace lvmflow {
namespace {

// The bundled sample must stay large enough for the quickstart to train and evaluate LVMs,
// and clean: no markup in any chunk.
TEST(SampleDump, HasAtLeast40ArticlesAnd1500CleanChunksAtDefaults) {
  auto dump = std::filesystem::path(LVMFLOW_SOURCE_DIR) / "data/sample-pages-articles.xml";
  testing::TestContext ingest_ctx("ingest.wikipedia", {{"path", dump.string()}});
  auto source = ingest_ctx.make_stage();
  auto sections = testing::drain_source(dynamic_cast<SourceStage&>(*source), ingest_ctx, 8);
  EXPECT_GE(ingest_ctx.metric_value("articles_read"), 40);
  EXPECT_EQ(ingest_ctx.metric_value("articles_skipped"), 0);
  testing::TestContext chunk_ctx("chunk.text");
  auto stage = chunk_ctx.make_stage();
  auto& map = dynamic_cast<MapStage&>(*stage);
  std::size_t chunks = 0;
  for (const auto& b : sections) {
    Batch out = map.process(chunk_ctx, b);
    chunks += out.rows();
    for (const auto& text : out.text_column("text"))
      for (const char* token : {"{{", "}}", "[[", "]]", "{|", "|}", "<ref", "&nbsp;", "''"})
        EXPECT_EQ(text.find(token), std::string::npos) << token << " in " << text;
  }
  EXPECT_GE(chunks, 1500u);
}

}  // namespace
}  // namespace lvmflow

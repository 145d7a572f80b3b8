// The ingest.wikipedia stage through the registry, as the engine runs it.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "pipeline/error.hpp"
#include "stages/ingest/wikitext_cleaner.hpp"
#include "tests/stages/ingest/ingest_test_util.hpp"

namespace lvmflow {
namespace {

using ingest_test::export_xml;
using ingest_test::fixture;
using ingest_test::page_xml;
using ingest_test::TempDir;
using testing::TestContext;

std::vector<Batch> drain(TestContext& ctx, std::size_t batch_size = 64) {
  auto stage = ctx.make_stage();
  return testing::drain_source(dynamic_cast<SourceStage&>(*stage), ctx, batch_size);
}

std::vector<std::string> titles_of(const std::vector<Batch>& batches) {
  std::vector<std::string> titles;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.rows(); ++r)
      if (b.int_column("section_index")[r] == 0) titles.push_back(b.text_column("title")[r]);
  return titles;
}

TEST(IngestWikipediaStage, FixtureDumpKeepsOnlyRealArticles) {
  TestContext ctx("ingest.wikipedia", {{"path", fixture("sample-pages-articles.xml").string()}});
  auto batches = drain(ctx);
  EXPECT_EQ(titles_of(batches), (std::vector<std::string>{"Abacus", "Lighthouse", "Sourdough bread"}));
  EXPECT_EQ(ctx.metric_value("pages_read"), 9);
  EXPECT_EQ(ctx.metric_value("articles_read"), 3);
  EXPECT_EQ(ctx.metric_value("articles_skipped"), 0);
  EXPECT_EQ(ctx.metric_value("redirects"), 3);
  EXPECT_EQ(ctx.metric_value("non_article_pages"), 2);
  EXPECT_EQ(ctx.metric_value("disambiguation_pages"), 1);
  std::size_t rows = 0;
  for (const auto& b : batches) {
    b.check_consistent("test");
    rows += b.rows();
    for (std::size_t r = 0; r < b.rows(); ++r) {
      EXPECT_EQ(b.ids[r], std::to_string(b.int_column("article_id")[r]) + "#" +
                              std::to_string(b.int_column("section_index")[r]));
      const std::string& text = b.text_column("text")[r];
      for (const char* token : {"{{", "}}", "[[", "|}", "<ref", "&nbsp;", "'''"})
        EXPECT_EQ(text.find(token), std::string::npos) << token << " in " << text;
    }
  }
  EXPECT_EQ(ctx.metric_value("sections"), static_cast<double>(rows));
  // Sourdough: lead, History, Gold rush bakers, Microbiology, Method; See also etc. dropped.
  std::vector<std::string> sections;
  for (const auto& b : batches)
    for (std::size_t r = 0; r < b.rows(); ++r)
      if (b.text_column("title")[r] == "Sourdough bread") sections.push_back(b.text_column("section")[r]);
  EXPECT_EQ(sections, (std::vector<std::string>{"", "History", "Gold rush bakers", "Microbiology", "Method"}));
}

TEST(IngestWikipediaStage, Bz2MultistreamGivesTheSameRows) {
  TestContext plain("ingest.wikipedia", {{"path", fixture("sample-pages-articles.xml").string()}});
  TestContext bz("ingest.wikipedia", {{"path", fixture("sample-pages-articles.xml.bz2").string()}});
  auto a = drain(plain), b = drain(bz);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].ids, b[i].ids);
    EXPECT_EQ(a[i].text, b[i].text);
  }
}

TEST(IngestWikipediaStage, BatchSizeCountsArticlesAndNeverSplitsOne) {
  TestContext ctx("ingest.wikipedia", {{"path", fixture("sample-pages-articles.xml").string()}});
  auto batches = drain(ctx, 1);
  ASSERT_EQ(batches.size(), 3u);
  std::set<std::int64_t> seen;
  for (const auto& b : batches) {
    std::set<std::int64_t> ids(b.int_column("article_id").begin(), b.int_column("article_id").end());
    EXPECT_EQ(ids.size(), 1u);
    for (auto id : ids) EXPECT_TRUE(seen.insert(id).second) << "article " << id << " split across batches";
    EXPECT_GT(b.rows(), 1u);
  }
  auto two = drain(ctx, 2);
  ASSERT_EQ(two.size(), 2u);
}

TEST(IngestWikipediaStage, TitleFilterMaxArticlesAndMinChars) {
  auto path = fixture("sample-pages-articles.xml").string();
  TestContext sub("ingest.wikipedia", {{"path", path}, {"title_filter", "HOUSE"}});
  EXPECT_EQ(titles_of(drain(sub)), (std::vector<std::string>{"Lighthouse"}));
  // Redirects and other namespaces are counted as such before the title filter sees them.
  EXPECT_EQ(sub.metric_value("title_filtered"), 3);
}

TEST(IngestWikipediaStage, RegexTitleFilterAndLimits) {
  auto path = fixture("sample-pages-articles.xml").string();
  TestContext re("ingest.wikipedia", {{"path", path}, {"title_filter", "/^(Abacus|Sourdough)/"}});
  EXPECT_EQ(titles_of(drain(re)), (std::vector<std::string>{"Abacus", "Sourdough bread"}));
  TestContext first("ingest.wikipedia", {{"path", path}, {"max_articles", "1"}});
  EXPECT_EQ(titles_of(drain(first)), (std::vector<std::string>{"Abacus"}));
  EXPECT_EQ(first.metric_value("pages_read"), 1);
  // min_chars between the shortest article's prose and the others' drops just that one.
  TestContext all("ingest.wikipedia", {{"path", path}, {"min_chars", "0"}});
  std::map<std::string, std::size_t> chars;
  for (const auto& b : drain(all))
    for (std::size_t r = 0; r < b.rows(); ++r) chars[b.text_column("title")[r]] += b.text_column("text")[r].size();
  ASSERT_EQ(chars.size(), 3u);
  auto shortest = std::min_element(chars.begin(), chars.end(), [](auto& a, auto& b) { return a.second < b.second; });
  std::size_t next_shortest = SIZE_MAX;
  for (const auto& [title, n] : chars)
    if (title != shortest->first) next_shortest = std::min(next_shortest, n);
  std::string threshold = std::to_string((shortest->second + next_shortest) / 2);
  TestContext long_only("ingest.wikipedia", {{"path", path}, {"min_chars", threshold}});
  auto kept = titles_of(drain(long_only));
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), shortest->first), 0);
  EXPECT_EQ(long_only.metric_value("short_articles"), 1);
  TestContext with_dab("ingest.wikipedia", {{"path", path}, {"skip_disambiguation", "false"}, {"min_chars", "10"}});
  EXPECT_EQ(titles_of(drain(with_dab)).size(), 4u);
  EXPECT_THROW(TestContext("ingest.wikipedia", {{"path", path}, {"title_filter", "/([a-z/"}}), Error);
}

TEST(IngestWikipediaStage, BrokenArticlesAreSkippedAndCounted) {
  TempDir dir;
  std::string body = std::string(300, 'x') + ". Enough prose here.";
  std::string broken = "  <page>\n    <title>Broken</title>\n    <ns>0</ns>\n    <id>not-a-number</id>\n"
                       "    <revision><text>" + body + "</text></revision>\n  </page>\n";
  auto path = dir.file("d.xml", export_xml(page_xml(1, "A", body) + broken + page_xml(3, "C", body)));
  TestContext ctx("ingest.wikipedia", {{"path", path.string()}});
  EXPECT_EQ(titles_of(drain(ctx)), (std::vector<std::string>{"A", "C"}));
  EXPECT_EQ(ctx.metric_value("articles_skipped"), 1);
  ASSERT_FALSE(ctx.logs.empty());
  EXPECT_NE(ctx.logs.front().find("d.xml:"), std::string::npos);
  EXPECT_NE(ctx.logs.front().find("skipped a broken article"), std::string::npos);
}

TEST(IngestWikipediaStage, DamagedInputFailsTheRunWithOneClearError) {
  TempDir dir;
  auto bad = dir.file("bad.xml", export_xml(page_xml(1, "A", "x\xFFy")));
  TestContext ctx("ingest.wikipedia", {{"path", bad.string()}});
  try {
    drain(ctx);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.xml:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(TestContext("ingest.wikipedia", {{"path", (dir.path() / "missing.xml").string()}}), Error);
  EXPECT_THROW(TestContext("ingest.wikipedia", {{"path", bad.string()}, {"format", "csv"}}), Error);
}

TEST(IngestWikipediaStage, JsonLinesAndTxtFolderInputs) {
  TempDir dir;
  std::string text = "First paragraph of a plain text article. It has two sentences.\n\n== Later ==\nMore text.";
  auto jsonl = dir.file("a.jsonl", "{\"id\": \"5\", \"title\": \"Plain\", \"text\": \"First paragraph of a plain "
                                   "text article. It has two sentences.\\n\\n== Later ==\\nMore text.\"}\n");
  TestContext j("ingest.wikipedia", {{"path", jsonl.string()}, {"min_chars", "10"}});
  auto jb = drain(j);
  ASSERT_EQ(jb.size(), 1u);
  EXPECT_EQ(jb[0].ids, (std::vector<std::string>{"5#0", "5#1"}));
  EXPECT_EQ(jb[0].text_column("section")[1], "Later");
  std::filesystem::create_directories(dir.path() / "txt");
  ingest_test::write_file(dir.path() / "txt" / "plain.txt", "TITLE: Plain\n" + text);
  TestContext t("ingest.wikipedia", {{"path", (dir.path() / "txt").string()}, {"min_chars", "10"}});
  auto tb = drain(t);
  ASSERT_EQ(tb.size(), 1u);
  EXPECT_EQ(tb[0].text, jb[0].text);
}

TEST(IngestWikipediaStage, FilesReadAreTheInputsForTheCacheKey) {
  const StageInfo* info = stage_registry().find("ingest.wikipedia");
  ASSERT_NE(info, nullptr);
  TestContext ctx("ingest.wikipedia", {{"path", fixture("sample-pages-articles.xml.bz2").string()}});
  auto files = info->files_read(ctx.params());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0], fixture("sample-pages-articles.xml.bz2"));
}

// Ctrl-C while one huge page is being cleaned: the cleaner polls the stage's context as it goes
// (not only between articles), and the stage stops inside that page.
TEST(IngestWikipediaStage, CancellationReachesAPageBeingCleaned) {
  TempDir dir;
  std::string huge;
  while (huge.size() < (std::size_t(4) << 20)) huge += "Prose of a long article with a [[link]] and {{nowrap|a template}}.\n\n";
  auto path = dir.file("d.xml", export_xml(page_xml(1, "Huge", huge) + page_xml(2, "After", std::string(300, 'x') + ".")));
  // Cancelled from the `cancel_from`-th question on.
  struct CountingContext : TestContext {
    using TestContext::TestContext;
    bool cancelled() const override { return ++asked >= cancel_from; }
    mutable int asked = 0;
    int cancel_from = 1 << 30;
  };

  CountingContext whole("ingest.wikipedia", {{"path", path.string()}});
  EXPECT_EQ(titles_of(drain(whole)), (std::vector<std::string>{"Huge", "After"}));
  EXPECT_GE(static_cast<std::size_t>(whole.asked), huge.size() / 2 / ingest::kCancelCheckBytes)
      << "the cleaner does not poll the context";

  CountingContext stopped("ingest.wikipedia", {{"path", path.string()}});
  stopped.cancel_from = 2;   // the stage asks once before the page, the cleaner next
  auto stage = stopped.make_stage();
  Batch out;
  EXPECT_FALSE(dynamic_cast<SourceStage&>(*stage).next(stopped, out, 64));
  EXPECT_EQ(out.rows(), 0u);
  EXPECT_EQ(stopped.asked, 3) << "went on cleaning after the context said stop";   // 3rd: the stage's own
  EXPECT_TRUE(stopped.logs.empty()) << "a cancelled page must not be logged as broken";
}

}  // namespace
}  // namespace lvmflow

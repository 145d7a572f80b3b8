// Readers: XML (plain, bz2, multistream), JSON lines, .txt folders, and their errors.
#include <gtest/gtest.h>

#include <random>

#include "pipeline/error.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/ingest/byte_source.hpp"
#include "tests/stages/ingest/ingest_test_util.hpp"

namespace lvmflow::ingest {
namespace {

using ingest_test::bzip2;
using ingest_test::export_xml;
using ingest_test::fixture;
using ingest_test::page_xml;
using ingest_test::read_file;
using ingest_test::TempDir;

std::vector<RawArticle> read_all(const std::filesystem::path& path, InputFormat format = InputFormat::Auto) {
  auto reader = open_article_reader(path, format);
  std::vector<RawArticle> out;
  RawArticle a;
  while (reader->next(a)) out.push_back(a);
  return out;
}

// Runs `fn`, expects an lvmflow::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    FAIL() << "expected an lvmflow::Error";
  } catch (const Error& e) {
    for (const auto& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << e.what() << "' lacks '" << part << "'";
  }
}

TEST(WikiXmlReader, ReadsEveryPageOfTheFixtureDump) {
  auto pages = read_all(fixture("sample-pages-articles.xml"));
  ASSERT_EQ(pages.size(), 9u);   // 4 articles, 3 redirects, a Talk page and a Category page
  EXPECT_EQ(pages[0].title, "Abacus");
  EXPECT_EQ(pages[0].id, 1);
  EXPECT_EQ(pages[0].ns, 0);
  EXPECT_FALSE(pages[0].redirect);
  EXPECT_TRUE(pages[0].problem.empty());
  // XML entities are decoded: the dump has &lt;ref&gt; and &amp;nbsp;.
  EXPECT_NE(pages[0].text.find("<ref>{{cite book"), std::string::npos);
  EXPECT_NE(pages[3].text.find("19th&nbsp;century"), std::string::npos);
  int redirects = 0, talk = 0, category = 0;
  for (const auto& p : pages) {
    redirects += p.redirect;
    talk += p.ns == 1;
    category += p.ns == 14;
  }
  EXPECT_EQ(redirects, 3);
  EXPECT_EQ(talk, 1);
  EXPECT_EQ(category, 1);
}

TEST(WikiXmlReader, MultistreamBz2ReadsTheSameAsPlainXml) {
  auto plain = read_all(fixture("sample-pages-articles.xml"));
  auto bz = read_all(fixture("sample-pages-articles.xml.bz2"));
  ASSERT_EQ(plain.size(), bz.size());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].title, bz[i].title);
    EXPECT_EQ(plain[i].text, bz[i].text);
  }
  EXPECT_TRUE(ByteSource::looks_bzip2(fixture("sample-pages-articles.xml.bz2")));
}

TEST(WikiXmlReader, ConcatenatedStreamsOfOneDocument) {
  // Split a document at arbitrary points and compress each part: one text when decompressed.
  std::string xml = read_file(fixture("sample-pages-articles.xml"));
  std::string multi = bzip2(xml.substr(0, 1000)) + bzip2(xml.substr(1000, 7)) + bzip2(xml.substr(1007));
  TempDir dir;
  auto pages = read_all(dir.file("multi.xml.bz2", multi));
  EXPECT_EQ(pages.size(), 9u);
}

std::string read_bytes(const std::filesystem::path& path, const Bz2Tuning& tuning) {
  auto source = ByteSource::open(path, tuning);
  std::string out;
  std::vector<char> buf(100000);
  while (std::size_t n = source->read(buf.data(), buf.size())) out.append(buf.data(), n);
  return out;
}

// Text that bzip2 cannot shrink much, so a few hundred KB stay a few hundred KB compressed.
std::string noisy_text(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, ' ');
  for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

TEST(Bz2Source, ParallelSegmentsAndStreamingFallbackGiveTheSameText) {
  TempDir dir;
  std::vector<std::string> parts;
  std::string text, multi;
  for (unsigned i = 0; i < 12; ++i) {
    parts.push_back(noisy_text(20000 + 3000 * i, i));
    text += parts.back();
    multi += bzip2(parts.back());
  }
  auto multi_path = dir.file("multi.bz2", multi);
  // Many small segments on several workers.
  EXPECT_EQ(read_bytes(multi_path, {.segment_bytes = 1000, .max_segment_bytes = 1 << 20, .workers = 3}), text);
  // Defaults: one segment.
  EXPECT_EQ(read_bytes(multi_path, {}), text);
  // One stream of 400 KB: past max_segment_bytes, decompressed as a stream.
  std::string big = noisy_text(400000, 99);
  auto single = dir.file("single.bz2", bzip2(big));
  EXPECT_EQ(read_bytes(single, {.segment_bytes = 1000, .max_segment_bytes = 50000, .workers = 2}), big);
  // Small streams, then a long one: parallel first, streaming from the long stream on.
  auto mixed = dir.file("mixed.bz2", multi + bzip2(big) + bzip2(parts[0]));
  EXPECT_EQ(read_bytes(mixed, {.segment_bytes = 1000, .max_segment_bytes = 50000, .workers = 2}), text + big + parts[0]);
  // Truncation is reported in every mode.
  std::string whole = multi + bzip2(big);
  auto cut = dir.file("cut.bz2", whole.substr(0, whole.size() - 100));
  for (Bz2Tuning t : {Bz2Tuning{.segment_bytes = 1000, .max_segment_bytes = 50000, .workers = 2}, Bz2Tuning{}})
    expect_error([&] { read_bytes(cut, t); }, {"cut.bz2", "compressed byte", "truncated"});
}

TEST(WikiXmlReader, TruncatedBz2IsAnErrorWithTheFileAndOffset) {
  std::string bz = read_file(fixture("sample-pages-articles.xml.bz2"));
  TempDir dir;
  auto path = dir.file("cut.xml.bz2", bz.substr(0, bz.size() - 50));
  expect_error([&] { read_all(path); }, {"cut.xml.bz2", "compressed byte", "truncated"});
}

TEST(WikiXmlReader, CorruptBz2IsAnError) {
  std::string bz = bzip2(export_xml(page_xml(1, "A", std::string(5000, 'x'))));
  bz[bz.size() / 2] ^= 0x55;
  TempDir dir;
  auto path = dir.file("bad.xml.bz2", bz);
  expect_error([&] { read_all(path); }, {"bad.xml.bz2", "compressed byte"});
}

TEST(WikiXmlReader, EmptyAndMissingFilesAreErrors) {
  TempDir dir;
  auto empty = dir.file("empty.xml", "");
  expect_error([&] { read_all(empty); }, {"empty.xml", "empty"});
  expect_error([&] { read_all(dir.path() / "nope.xml"); }, {"nope.xml", "does not exist"});
}

TEST(WikiXmlReader, MalformedXmlNamesTheLine) {
  TempDir dir;
  std::string xml = export_xml(page_xml(1, "A", "text") +
                               "  <page>\n    <title>B</title>\n    <id>2</id>\n    <revision>\n"
                               "      <text>oops</revision>\n  </page>\n");
  auto path = dir.file("bad.xml", xml);
  expect_error([&] { read_all(path); }, {"bad.xml:", "malformed XML", "</revision>", "<text>"});
  // Line 16 holds the mismatched closing tag.
  expect_error([&] { read_all(path); }, {"bad.xml:16"});
}

TEST(WikiXmlReader, TruncatedXmlAndUnknownEntitiesAreErrors) {
  TempDir dir;
  std::string xml = export_xml(page_xml(1, "A", "some text"));
  auto cut = dir.file("cut.xml", xml.substr(0, xml.size() / 2));
  expect_error([&] { read_all(cut); }, {"cut.xml", "ends inside"});
  auto entity = dir.file("entity.xml", export_xml(page_xml(1, "A", "caf&eacute;")));
  expect_error([&] { read_all(entity); }, {"entity.xml:", "unknown entity &eacute;"});
  auto not_wiki = dir.file("other.xml", "<html><body/></html>");
  expect_error([&] { read_all(not_wiki); }, {"other.xml", "not a MediaWiki XML export"});
}

TEST(WikiXmlReader, NonUtf8ByteIsAnErrorWithLineAndOffset) {
  TempDir dir;
  std::string xml = export_xml(page_xml(1, "A", "fine\nline") + page_xml(2, "B", "caf\xE9 au lait"));
  auto path = dir.file("latin1.xml", xml);
  std::size_t offset = xml.find('\xE9');
  std::size_t line = 1 + static_cast<std::size_t>(std::count(xml.begin(), xml.begin() + static_cast<long>(offset), '\n'));
  expect_error([&] { read_all(path); },
               {"latin1.xml:" + std::to_string(line), "byte " + std::to_string(offset), "0xE9", "UTF-8"});
  // Overlong encodings and surrogates are not UTF-8 either.
  auto overlong = dir.file("overlong.xml", export_xml(page_xml(1, "A", "x\xC0\xAFy")));
  expect_error([&] { read_all(overlong); }, {"0xC0"});
  auto surrogate = dir.file("surrogate.xml", export_xml(page_xml(1, "A", "x\xED\xA0\x80y")));
  expect_error([&] { read_all(surrogate); }, {"0xED"});
}

TEST(WikiXmlReader, APageWithoutIdIsReturnedAsBroken) {
  TempDir dir;
  std::string broken = "  <page>\n    <title>No id</title>\n    <ns>0</ns>\n    <revision><text>t</text></revision>\n  </page>\n";
  auto path = dir.file("d.xml", export_xml(page_xml(1, "A", "a") + broken + page_xml(3, "C", "c")));
  auto pages = read_all(path);
  ASSERT_EQ(pages.size(), 3u);
  EXPECT_TRUE(pages[0].problem.empty());
  EXPECT_NE(pages[1].problem.find("no numeric <id>"), std::string::npos);
  EXPECT_EQ(pages[2].title, "C");
}

TEST(WikiXmlReader, CdataCommentsAndSelfClosingTags) {
  TempDir dir;
  std::string page = "  <page><title>A &amp; B</title><ns>0</ns><id>7</id><redirect title=\"X &quot;Y&quot;\"/>"
                     "<!-- note --><revision><id>1</id><text><![CDATA[a <b> & c]]> &#233;&#x263A;</text></revision></page>\n";
  auto pages = read_all(dir.file("c.xml", "<?xml version=\"1.0\"?>\n" + export_xml(page)));
  ASSERT_EQ(pages.size(), 1u);
  EXPECT_EQ(pages[0].title, "A & B");
  EXPECT_EQ(pages[0].id, 7);
  EXPECT_TRUE(pages[0].redirect);
  EXPECT_EQ(pages[0].text, "a <b> & c \xC3\xA9\xE2\x98\xBA");
}

TEST(PrefetchingReader, DeliversEverythingInOrderThenTheError) {
  auto plain = read_all(fixture("sample-pages-articles.xml"));
  // A queue of one article and one byte still passes everything through, in order.
  auto reader = make_prefetching_reader(open_article_reader(fixture("sample-pages-articles.xml"), InputFormat::Auto), 1, 1);
  std::vector<std::string> titles;
  RawArticle a;
  while (reader->next(a)) titles.push_back(a.title);
  ASSERT_EQ(titles.size(), plain.size());
  for (std::size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(titles[i], plain[i].title);
  // A damaged file: the pages before the damage, then the error. (Input is checked a 1 MiB
  // read at a time, so the damage sits beyond the first read.)
  TempDir dir;
  std::string xml = export_xml(page_xml(1, "A", "a") + page_xml(2, "B", std::string(2 << 20, 'b')) +
                               page_xml(3, "C", "c\xFF"));
  auto bad = make_prefetching_reader(open_article_reader(dir.file("bad.xml", xml), InputFormat::Auto), 8, 1 << 20);
  ASSERT_TRUE(bad->next(a));
  EXPECT_EQ(a.title, "A");
  expect_error([&] { bad->next(a); }, {"bad.xml:", "UTF-8"});
  // Dropping a reader that is still reading ahead stops its thread.
  auto early = make_prefetching_reader(open_article_reader(fixture("sample-pages-articles.xml.bz2"), InputFormat::Auto), 2, 1 << 20);
  ASSERT_TRUE(early->next(a));
  early.reset();
}

TEST(JsonLinesReader, ReadsArticlesAndFlagsBrokenLines) {
  TempDir dir;
  auto path = dir.file("wiki_00.jsonl",
                       "{\"id\": \"12\", \"url\": \"https://x\", \"title\": \"Tide pool\", \"text\": \"Tide pools \\\"hold\\\" water.\\nSecond \\u00e9 line.\"}\n"
                       "\n"
                       "{\"id\": 13, \"title\": \"Broken\", \"text\": \"unterminated}\n"
                       "{\"id\": 14, \"text\": \"no title\"}\n"
                       "{\"id\": 15, \"title\": \"Emoji\", \"text\": \"\\ud83d\\ude00\", \"extra\": [1, {\"a\": null}]}\n");
  auto articles = read_all(path);
  ASSERT_EQ(articles.size(), 4u);
  EXPECT_EQ(articles[0].id, 12);
  EXPECT_EQ(articles[0].title, "Tide pool");
  EXPECT_EQ(articles[0].text, "Tide pools \"hold\" water.\nSecond \xC3\xA9 line.");
  EXPECT_NE(articles[1].problem.find("not a JSON object"), std::string::npos);
  EXPECT_NE(articles[1].where.find("wiki_00.jsonl:3"), std::string::npos);
  EXPECT_NE(articles[2].problem.find("title"), std::string::npos);
  EXPECT_TRUE(articles[3].problem.empty());
  EXPECT_EQ(articles[3].text, "\xF0\x9F\x98\x80");
}

TEST(JsonLinesReader, FormatIsDetectedByContentWithoutAnExtension) {
  TempDir dir;
  auto path = dir.file("wiki_00", "{\"id\": 1, \"title\": \"T\", \"text\": \"x\"}\n");
  EXPECT_EQ(detect_input_format(path), InputFormat::JsonLines);
  EXPECT_EQ(detect_input_format(fixture("sample-pages-articles.xml.bz2")), InputFormat::Xml);
  EXPECT_EQ(detect_input_format(dir.path()), InputFormat::TextFolder);
  EXPECT_THROW(parse_input_format("yaml"), Error);
}

TEST(TextFolderReader, OneArticlePerTxtFileInNameOrder) {
  TempDir dir;
  dir.file("b_second.txt", "TITLE: Second article\nBody two.\n");
  dir.file("a_first.txt", "Body one.\n");
  dir.file("ignored.md", "not an article");
  dir.file("c_empty.txt", "");
  dir.file("d_wikitext.wiki", "TITLE: Wiki\n'''Wiki''' text.\n");
  auto articles = read_all(dir.path());
  ASSERT_EQ(articles.size(), 4u);
  EXPECT_EQ(articles[3].title, "Wiki");
  EXPECT_EQ(articles[0].title, "a first");
  EXPECT_EQ(articles[0].text, "Body one.\n");
  EXPECT_EQ(articles[1].title, "Second article");
  EXPECT_EQ(articles[1].id, 2);
  EXPECT_EQ(articles[1].text, "Body two.\n");
  EXPECT_EQ(articles[2].problem, "empty file");
  EXPECT_EQ(input_files(dir.path(), InputFormat::Auto).size(), 4u);
  TempDir none;
  expect_error([&] { read_all(none.path()); }, {"no .txt or .wiki files"});
}

// Damaged inputs of every kind: each read either succeeds or throws lvmflow::Error — never
// another exception, a crash or a hang (run under ASan/UBSan with -DLVMFLOW_SANITIZE=ON).
TEST(Readers, RandomlyDamagedInputsFailCleanly) {
  const std::string xml = read_file(fixture("sample-pages-articles.xml"));
  const std::string bz = read_file(fixture("sample-pages-articles.xml.bz2"));
  const std::string jsonl =
      "{\"id\": 1, \"title\": \"A\", \"text\": \"x \\u00e9 y\"}\n{\"id\": \"2\", \"title\": \"B\", \"text\": \"z\", \"n\": [1, {}]}\n";
  std::mt19937 rng(42);
  const std::string specials = "<>&;/=\"'![]?-\n\xC3\xFF\x80";
  TempDir dir;
  int errors = 0, clean = 0;
  for (int round = 0; round < 600; ++round) {
    const std::string& base = round % 3 == 0 ? xml : round % 3 == 1 ? bz : jsonl;
    std::string damaged = base;
    std::uniform_int_distribution<std::size_t> pos(0, damaged.size() - 1);
    switch (rng() % 4) {
      case 0: damaged.resize(pos(rng)); break;                                        // truncate
      case 1: damaged[pos(rng)] ^= static_cast<char>(1 + rng() % 255); break;          // flip a byte
      case 2: damaged.insert(pos(rng), 1, specials[rng() % specials.size()]); break;   // insert markup
      default: damaged.erase(pos(rng), 1 + rng() % 40); break;                         // cut a piece
    }
    const char* name = round % 3 == 0 ? "d.xml" : round % 3 == 1 ? "d.xml.bz2" : "d.jsonl";
    auto path = dir.file(name, damaged);
    try {
      auto reader = open_article_reader(path, InputFormat::Auto);
      RawArticle a;
      while (reader->next(a)) {}
      ++clean;
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 100);
  EXPECT_GT(clean, 10);
}

}  // namespace
}  // namespace lvmflow::ingest

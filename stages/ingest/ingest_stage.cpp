// Stage `ingest.wikipedia`: articles from a MediaWiki XML dump (plain or .bz2, multistream
// included), WikiExtractor JSON lines, or a folder of .txt files -> one row per section of
// cleaned prose. A batch never splits an article, so the chunker can number chunks per batch.
#include <algorithm>
#include <regex>

#include "pipeline/error.hpp"
#include "pipeline/stage.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/ingest/wikitext_cleaner.hpp"

namespace lvmflow {
namespace {

using ingest::RawArticle;

// `title_filter`: "/regex/" (ECMAScript, searched; "/regex/i" ignores case) or a plain
// substring matched without regard to case.
class TitleFilter {
 public:
  explicit TitleFilter(const std::string& spec) {
    if (spec.empty()) return;
    active_ = true;
    std::size_t last = spec.rfind('/');
    if (spec.size() >= 2 && spec.front() == '/' && last > 0 &&
        (last == spec.size() - 1 || spec.substr(last) == "/i")) {
      auto flags = std::regex::ECMAScript;
      if (last != spec.size() - 1) flags |= std::regex::icase;
      try {
        regex_.emplace(spec.substr(1, last - 1), flags);
      } catch (const std::regex_error& e) {
        throw Error("param title_filter", "title_filter '" + spec + "' is not a valid regular expression: " + e.what(),
                    "write /regex/ with ECMAScript syntax, or a plain substring without slashes");
      }
    } else {
      needle_ = lower(spec);
    }
  }
  bool matches(const std::string& title) const {
    if (!active_) return true;
    if (regex_) return std::regex_search(title, *regex_);
    return lower(title).find(needle_) != std::string::npos;
  }

 private:
  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }
  bool active_ = false;
  std::optional<std::regex> regex_;
  std::string needle_;
};

class IngestWikipediaStage : public SourceStage {
 public:
  explicit IngestWikipediaStage(const Params& p)
      : path_(p.get_path("path")),
        format_(ingest::parse_input_format(p.get_string("format"))),
        min_chars_(static_cast<std::size_t>(p.get_int("min_chars"))),
        max_articles_(static_cast<std::size_t>(p.get_int("max_articles"))),
        skip_disambiguation_(p.get_bool("skip_disambiguation")),
        title_filter_(p.has("title_filter") ? p.get_string("title_filter") : std::string()) {
    clean_.drop_sections = p.get_list("drop_sections");
    clean_.keep_lists = p.get_bool("keep_lists");
  }

  bool next(StageContext& ctx, Batch& out, std::size_t batch_size) override {
    if (done_) return false;
    if (!reader_) {
      // Decompression and XML parsing run ahead on their own thread while this one cleans.
      reader_ = ingest::make_prefetching_reader(ingest::open_article_reader(path_, format_),
                                                kPrefetchArticles, kPrefetchBytes);
    }
    out = Batch{};
    for (const char* col : {"title", "section", "text"}) out.text[col];
    for (const char* col : {"article_id", "section_index"}) out.ints[col];
    // The batch-size hint counts articles: a batch never splits one.
    const std::size_t articles_wanted = std::max<std::size_t>(1, batch_size);
    std::size_t articles_in_batch = 0;
    bool finished = false;
    RawArticle article;
    while (articles_in_batch < articles_wanted) {
      if (ctx.cancelled()) return false;
      if (max_articles_ > 0 && articles_read_ >= max_articles_) { finished = true; break; }
      if (!reader_->next(article)) { finished = true; break; }
      ++pages_read_;
      if (accept(ctx, article, out)) {
        ++articles_read_;
        ++articles_in_batch;
      }
    }
    if (finished) {
      done_ = true;
      report(ctx);
    }
    return out.rows() > 0;
  }

 private:
  bool accept(StageContext& ctx, RawArticle& a, Batch& out) {
    if (!a.problem.empty()) {
      ++skipped_;
      ctx.log(a.where + ": skipped a broken article: " + a.problem);
      return false;
    }
    if (a.ns != 0) { ++non_articles_; return false; }
    if (a.redirect || ingest::is_redirect_text(a.text)) { ++redirects_; return false; }
    if (!title_filter_.matches(a.title)) { ++title_filtered_; return false; }
    if (skip_disambiguation_ && ingest::is_disambiguation(a.title, a.text)) { ++disambiguation_; return false; }
    std::vector<ingest::CleanSection> sections;
    try {
      // A huge page must not hold up Ctrl-C: the cleaner polls the context as it goes.
      sections = ingest::clean_wikitext(a.text, clean_, [&ctx] { return ctx.cancelled(); });
    } catch (const ingest::CleaningCancelled&) {
      return false;   // next() sees the cancellation and ends the stream
    } catch (const std::exception& e) {   // e.g. an article too large for memory
      ++skipped_;
      ctx.log(a.where + ": skipped article '" + a.title + "': cleaning failed: " + e.what());
      return false;
    }
    std::size_t chars = 0;
    for (const auto& s : sections) chars += s.text.size();
    if (chars == 0 || chars < min_chars_) { ++too_short_; return false; }
    const std::string article_id = std::to_string(a.id);
    for (std::size_t i = 0; i < sections.size(); ++i) {
      out.ids.push_back(article_id + "#" + std::to_string(i));
      out.text["title"].push_back(a.title);
      out.text["section"].push_back(std::move(sections[i].title));
      out.text["text"].push_back(std::move(sections[i].text));
      out.ints["article_id"].push_back(a.id);
      out.ints["section_index"].push_back(static_cast<std::int64_t>(i));
    }
    sections_ += sections.size();
    return true;
  }

  void report(StageContext& ctx) {
    ctx.metric("pages_read", static_cast<double>(pages_read_));
    ctx.metric("articles_read", static_cast<double>(articles_read_));
    ctx.metric("articles_skipped", static_cast<double>(skipped_));
    ctx.metric("sections", static_cast<double>(sections_));
    ctx.metric("redirects", static_cast<double>(redirects_));
    ctx.metric("non_article_pages", static_cast<double>(non_articles_));
    ctx.metric("disambiguation_pages", static_cast<double>(disambiguation_));
    ctx.metric("short_articles", static_cast<double>(too_short_));
    ctx.metric("title_filtered", static_cast<double>(title_filtered_));
    ctx.log("read " + std::to_string(pages_read_) + " pages: " + std::to_string(articles_read_) +
            " articles, " + std::to_string(sections_) + " sections; skipped " +
            std::to_string(skipped_) + " broken, " + std::to_string(redirects_) + " redirects, " +
            std::to_string(non_articles_) + " outside the main namespace, " +
            std::to_string(disambiguation_) + " disambiguation, " + std::to_string(too_short_) +
            " short, " + std::to_string(title_filtered_) + " by title");
  }

  static constexpr std::size_t kPrefetchArticles = 256;
  static constexpr std::size_t kPrefetchBytes = std::size_t(64) << 20;

  std::filesystem::path path_;
  ingest::InputFormat format_;
  std::size_t min_chars_, max_articles_;
  bool skip_disambiguation_;
  TitleFilter title_filter_;
  ingest::CleanOptions clean_;
  std::unique_ptr<ingest::ArticleReader> reader_;
  bool done_ = false;
  std::size_t pages_read_ = 0, articles_read_ = 0, skipped_ = 0, sections_ = 0, redirects_ = 0,
              non_articles_ = 0, disambiguation_ = 0, too_short_ = 0, title_filtered_ = 0;
};

std::string joined_default_drop_sections() {
  std::string out = "[";
  for (const auto& s : ingest::CleanOptions::default_drop_sections())
    out += (out.size() > 1 ? ", " : "") + s;
  return out + "]";
}

}  // namespace

void register_ingest_stages(StageRegistry& registry) {
  StageInfo info;
  info.type = "ingest.wikipedia";
  info.version = 1;
  info.kind = StageKind::Source;
  info.summary =
      "Reads Wikipedia articles (MediaWiki XML dump, plain or .bz2 incl. multistream; "
      "WikiExtractor JSON lines; or a folder of .txt files), cleans wikitext into prose and emits "
      "one row per section.";
  info.params = {
      {"path", ParamType::Path, "", "dump file (.xml, .xml.bz2, .jsonl) or folder of .txt / .wiki files", true},
      {"format", ParamType::String, "auto", "auto | xml | jsonl | txt (auto: by name, then by content)"},
      {"min_chars", ParamType::Int, "200", "skip articles with fewer characters of clean prose"},
      {"max_articles", ParamType::Int, "0", "stop after this many articles (0: all)"},
      {"title_filter", ParamType::String, "",
       "keep only titles containing this text (case-insensitive), or matching /regex/ (/regex/i)"},
      {"skip_disambiguation", ParamType::Bool, "true", "skip disambiguation and set-index pages"},
      {"drop_sections", ParamType::StringList, joined_default_drop_sections(),
       "section titles dropped with their subsections (case-insensitive)"},
      {"keep_lists", ParamType::Bool, "true", "keep list items (a list is one paragraph, an item per line)"},
  };
  info.make = [](const Params& p) -> std::unique_ptr<Stage> {
    return std::make_unique<IngestWikipediaStage>(p);
  };
  info.files_read = [](const Params& p) {
    return ingest::input_files(p.get_path("path"), ingest::parse_input_format(p.get_string("format")));
  };
  info.validate = [](const Params& p) {
    ingest::parse_input_format(p.get_string("format"));
    if (p.get_int("min_chars") < 0) throw Error("param min_chars", "min_chars must be 0 or more");
    if (p.get_int("max_articles") < 0) throw Error("param max_articles", "max_articles must be 0 (all) or more");
    if (p.has("title_filter")) TitleFilter check(p.get_string("title_filter"));
    std::error_code ec;
    if (!std::filesystem::exists(p.get_path("path"), ec))
      throw Error("param path", "path '" + p.get_path("path") + "' does not exist",
                  "point `path` at a dump file or a folder of .txt files");
  };
  registry.add(std::move(info));
}

}  // namespace lvmflow

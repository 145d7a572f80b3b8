// MediaWiki XML export (schema 0.3 - 0.11) -> RawArticle, streamed page by page.
#include <charconv>

#include "pipeline/error.hpp"
#include "stages/ingest/article_reader.hpp"
#include "stages/ingest/xml_tokenizer.hpp"

namespace lvmflow::ingest {
namespace {

bool parse_int(const std::string& text, std::int64_t& out) {
  std::size_t b = text.find_first_not_of(" \t\r\n");
  std::size_t e = text.find_last_not_of(" \t\r\n");
  if (b == std::string::npos) return false;
  auto [p, ec] = std::from_chars(text.data() + b, text.data() + e + 1, out);
  return ec == std::errc() && p == text.data() + e + 1;
}

class WikiXmlReader : public ArticleReader {
 public:
  explicit WikiXmlReader(const std::filesystem::path& path)
      : input_(ByteSource::open(path)), xml_(input_) {}

  bool next(RawArticle& out) override {
    if (!started_) start();
    while (true) {
      xml_.next(ev_);
      if (ev_.kind == XmlEvent::EndOfDocument) return false;
      if (ev_.kind == XmlEvent::StartElement && ev_.name == "page" && xml_.depth() == 2) {
        read_page(out);
        return true;
      }
      // siteinfo, logitem or anything else at the top level: skip it whole.
    }
  }

 private:
  void start() {
    started_ = true;
    xml_.next(ev_);
    while (ev_.kind == XmlEvent::Text) xml_.next(ev_);
    if (ev_.kind != XmlEvent::StartElement || ev_.name != "mediawiki")
      throw Error(input_.where(),
                  "not a MediaWiki XML export: the root element is <" + ev_.name +
                      ">, expected <mediawiki>",
                  "use a *-pages-articles*.xml[.bz2] dump, or set format: jsonl / txt");
  }

  // Reads from just after <page> to its </page>. Fields live at fixed depths: title, ns, id and
  // redirect directly under page (depth 3); the revision's text under revision (depth 4).
  void read_page(RawArticle& out) {
    out = RawArticle{};
    std::uint64_t line = ev_.line;
    out.where = input_.where_at(line, input_.offset());
    const std::size_t page_depth = xml_.depth();
    std::string* field = nullptr;
    std::string id_text, ns_text;
    bool have_id = false, have_text = false, in_revision = false;
    while (true) {
      xml_.next(ev_);
      switch (ev_.kind) {
        case XmlEvent::StartElement: {
          std::size_t depth = xml_.depth() - (ev_.self_closing ? 0 : 1);  // depth of the element's parent
          field = nullptr;
          if (depth == page_depth) {
            if (ev_.name == "title") field = &out.title;
            else if (ev_.name == "ns") field = &ns_text;
            else if (ev_.name == "id" && !have_id) { field = &id_text; have_id = true; }
            else if (ev_.name == "redirect") out.redirect = true;
            else if (ev_.name == "revision") in_revision = true;
          } else if (in_revision && depth == page_depth + 1 && ev_.name == "text" && !have_text) {
            // A later revision (full-history dumps) replaces the earlier text.
            out.text.clear();
            field = &out.text;
            have_text = true;
          }
          break;
        }
        case XmlEvent::Text:
          if (field) *field += ev_.text;
          break;
        case XmlEvent::EndElement:
          field = nullptr;
          if (ev_.name == "revision" && xml_.depth() == page_depth) {
            in_revision = false;
            have_text = false;   // full-history dumps: the last revision wins
          }
          if (ev_.name == "page" && xml_.depth() == page_depth - 1) {
            finish_page(out, id_text, ns_text);
            return;
          }
          break;
        case XmlEvent::EndOfDocument:
          throw Error(input_.where(), "the file ends inside a <page>", "the dump is truncated");
      }
    }
  }

  void finish_page(RawArticle& out, const std::string& id_text, const std::string& ns_text) {
    if (out.title.empty()) out.problem = "page has no <title>";
    else if (!parse_int(id_text, out.id) || out.id < 0)
      out.problem = "page '" + out.title + "' has no numeric <id> (got '" + id_text + "')";
    else if (!ns_text.empty() && !parse_int(ns_text, out.ns))
      out.problem = "page '" + out.title + "' has a non-numeric <ns> '" + ns_text + "'";
  }

  TextInput input_;
  XmlTokenizer xml_;
  XmlEvent ev_;
  bool started_ = false;
};

}  // namespace

std::unique_ptr<ArticleReader> make_wiki_xml_reader(const std::filesystem::path& path) {
  return std::make_unique<WikiXmlReader>(path);
}

}  // namespace lvmflow::ingest

#pragma once
// Wikitext -> clean prose, split into sections at headings. What is removed and what is kept
// is documented in docs/stages/ingest.md. The output never contains wiki or HTML markup
// (`{{`, `}}`, `[[`, `]]`, `{|`, `|}`, `<ref`, `&nbsp;`, `''`), whatever the input: each pass
// is total (unbalanced markup is dropped, never fatal), and a last scrub removes any leftover.
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace lvmflow::ingest {

struct CleanSection {
  std::string title;   // heading text; empty for the lead section
  int level = 0;       // heading level (== Two == is 2); 0 for the lead
  std::string text;    // paragraphs separated by "\n\n" (list items: one per line); never empty
};

struct CleanOptions {
  // Section titles (case-insensitive) dropped together with their subsections.
  std::vector<std::string> drop_sections = default_drop_sections();
  // Keep list items (a list is one paragraph, one item per line); false drops them.
  bool keep_lists = true;

  static std::vector<std::string> default_drop_sections();
};

// Returns true when the caller wants the work abandoned (Ctrl-C: StageContext::cancelled()).
using CancelCheck = std::function<bool()>;
// Thrown by clean_wikitext when its CancelCheck says so.
struct CleaningCancelled : std::exception {
  const char* what() const noexcept override { return "wikitext cleaning cancelled"; }
};

// Every pass is linear in the page size, whatever is left unclosed. `cancelled` is asked
// between passes and every kCancelCheckBytes of text while sections are assembled, so a huge
// page does not hold up Ctrl-C; when it returns true, CleaningCancelled is thrown.
std::vector<CleanSection> clean_wikitext(std::string_view wikitext, const CleanOptions& options = {},
                                         const CancelCheck& cancelled = {});
inline constexpr std::size_t kCancelCheckBytes = 64 * 1024;

// True for `#REDIRECT [[...]]` pages.
bool is_redirect_text(std::string_view wikitext);
// True when the title says "(disambiguation)", or the text carries a disambiguation template
// ({{disambiguation}}, {{dab}}, {{hndis}}, {{geodis}}, ...) or __DISAMBIG__.
bool is_disambiguation(std::string_view title, std::string_view wikitext);

// The individual passes, exposed for tests.
namespace wikitext {
std::string strip_comments(std::string_view s);
std::string strip_block_tags(std::string_view s);
std::string expand_templates(std::string_view s);
std::string strip_tables(std::string_view s);
std::string replace_links(std::string_view s);
std::string replace_external_links(std::string_view s);
std::string strip_html_tags(std::string_view s);
std::string strip_magic_words(std::string_view s);
std::string strip_quote_marks(std::string_view s);
std::string decode_html_entities(std::string_view s);
// Whitespace, punctuation left behind by removals, and the final markup scrub.
std::string tidy_paragraph(std::string_view s);
}  // namespace wikitext

}  // namespace lvmflow::ingest

#include "stages/ingest/wikitext_cleaner.hpp"
#include "stages/common/utf8.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace lvmflow::ingest {

std::vector<std::string> CleanOptions::default_drop_sections() {
  return {"References", "External links", "See also", "Further reading", "Notes", "Bibliography",
          "Notes and references", "References and notes", "Footnotes", "Citations", "Sources",
          "Works cited", "Gallery"};
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim_view(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// `prefix` must be lower case.
bool starts_with_icase(std::string_view s, std::size_t at, std::string_view prefix) {
  if (at + prefix.size() > s.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[at + i])) != prefix[i]) return false;
  return true;
}

// First occurrence of lower-case `needle` in `s` at or after `from`, ignoring case.
std::size_t find_icase(std::string_view s, const std::string& needle, std::size_t from) {
  for (std::size_t at = s.find(needle[0], from); at != std::string_view::npos; at = s.find(needle[0], at + 1))
    if (starts_with_icase(s, at, needle)) return at;
  return std::string_view::npos;
}

// "Infobox_settlement " -> "infobox settlement": how MediaWiki compares template names.
std::string normalize_name(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : trim_view(s)) {
    if (c == '_' || std::isspace(static_cast<unsigned char>(c))) { space = true; continue; }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}


// Reading a tag at s[i] == '<': its lowercased name, whether it closes (</x>) or self-closes
// (<x/>), and the index just past its '>'. Fails on anything that is not tag-shaped, so a
// literal "a < b" in prose is left alone.
struct TagShape {
  std::string name;
  bool closing = false;
  bool self_closing = false;
  std::size_t end = 0;
};
bool read_tag(std::string_view s, std::size_t i, TagShape& tag, std::size_t max_len = 2000) {
  std::size_t j = i + 1;
  tag.closing = j < s.size() && s[j] == '/';
  if (tag.closing) ++j;
  std::size_t name_begin = j;
  while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])))) ++j;
  if (j == name_begin || !std::isalpha(static_cast<unsigned char>(s[name_begin]))) return false;
  tag.name = lower(s.substr(name_begin, j - name_begin));
  if (j < s.size() && !(s[j] == '>' || s[j] == '/' || std::isspace(static_cast<unsigned char>(s[j]))))
    return false;
  std::size_t limit = std::min(s.size(), i + max_len);
  char quote = 0;
  for (; j < limit; ++j) {
    char c = s[j];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') {
      // Quotes only delimit attribute values (after '='), not apostrophes in stray text.
      if (j > 0 && (s[j - 1] == '=' || std::isspace(static_cast<unsigned char>(s[j - 1])))) quote = c;
      continue;
    }
    if (c == '<' || c == '\n') return false;
    if (c == '>') {
      tag.self_closing = s[j - 1] == '/';
      tag.end = j + 1;
      return true;
    }
  }
  return false;
}

// Extension and HTML elements whose content is not prose: removed with their content.
const std::unordered_set<std::string>& content_dropping_tags() {
  static const std::unordered_set<std::string> tags = {
      "ref", "references", "math", "chem", "ce", "gallery", "timeline", "score", "imagemap",
      "graph", "mapframe", "maplink", "templatestyles", "templatedata", "syntaxhighlight",
      "source", "pre", "hiero", "inputbox", "categorytree", "includeonly", "table", "indicator",
      "del", "s", "strike", "charinsert", "dynamicpagelist"};
  return tags;
}

// Tags stripped wherever they are left: formatting elements (their content is kept; block-level
// ones become line breaks) and stray halves of the content-dropping elements above.
const std::unordered_set<std::string>& known_html_tags() {
  static const std::unordered_set<std::string> tags = [] {
    std::unordered_set<std::string> t = {
        "b", "i", "u", "em", "strong", "small", "big", "sub", "sup", "span", "div", "p", "br", "hr",
        "center", "font", "blockquote", "poem", "nowiki", "abbr", "code", "tt", "kbd", "samp",
        "cite", "q", "ins", "mark", "dfn", "bdi", "bdo", "ruby", "rb", "rt", "rp", "rtc", "wbr",
        "ol", "ul", "li", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "caption", "tr",
        "td", "th", "tbody", "thead", "tfoot", "section", "onlyinclude", "noinclude", "time",
        "data", "var", "translate", "languages"};
    t.insert(content_dropping_tags().begin(), content_dropping_tags().end());
    return t;
  }();
  return tags;
}

bool is_block_tag(const std::string& name) {
  static const std::unordered_set<std::string> block = {
      "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "blockquote", "hr", "h1", "h2", "h3",
      "h4", "h5", "h6", "center", "poem", "tr", "table", "caption", "section"};
  return block.count(name) != 0;
}

constexpr int kMaxNesting = 40;

// ---------------------------------------------------------------------------------------
// Templates: braces are paired the way MediaWiki's preprocessor pairs them (a run of opening
// braces is matched from its inner end; {{{ }}} is a parameter, {{ }} a template), in one
// linear pass. Expansion then walks the pairs; only a few templates that stand for text in
// prose ({{lang}}, {{convert}}, {{nowrap}}, ...) produce output, all others vanish.
class TemplateExpander {
 public:
  explicit TemplateExpander(std::string_view s) : s_(s) { pair_braces(); }

  std::string expand() {
    std::string out;
    out.reserve(s_.size());
    render(0, s_.size(), 0, out);
    return out;
  }

 private:
  struct Span {
    std::size_t close;   // index of the closing run
    int width;           // 2: template, 3: parameter
  };

  void pair_braces() {
    struct Open { std::size_t pos, count; };
    std::vector<Open> stack;
    std::size_t i = 0, n = s_.size();
    while (i < n) {
      char c = s_[i];
      if (c != '{' && c != '}') { ++i; continue; }
      std::size_t j = i;
      while (j < n && s_[j] == c) ++j;
      std::size_t run = j - i;
      if (c == '{') {
        if (run >= 2) stack.push_back({i, run});
      } else {
        std::size_t pos = i;
        while (run >= 2 && !stack.empty()) {
          Open& top = stack.back();
          int width = top.count >= 3 && run >= 3 ? 3 : 2;
          spans_[top.pos + top.count - static_cast<std::size_t>(width)] = {pos, width};
          pos += static_cast<std::size_t>(width);
          run -= static_cast<std::size_t>(width);
          top.count -= static_cast<std::size_t>(width);
          if (top.count < 2) stack.pop_back();
        }
      }
      i = j;
    }
  }

  void render(std::size_t b, std::size_t e, int depth, std::string& out) {
    std::size_t i = b;
    while (i < e) {
      if (s_[i] != '{') {   // copy plain text up to the next brace in one go
        std::size_t next = std::min(e, s_.find('{', i));
        out.append(s_, i, next - i);
        i = next;
        continue;
      }
      auto it = spans_.find(i);
      if (it == spans_.end() || it->second.close >= e) {
        if (s_[i] == '{' && i + 1 < e && s_[i + 1] == '{') {
          // An opener that never closes is a broken template, not prose: drop it with its
          // name, so "{{Infobox" does not leave "Infobox" behind.
          i += 2;
          while (i < e && !std::strchr("|\n{}[]", s_[i])) ++i;
          continue;
        }
        out += s_[i++];
        continue;
      }
      std::size_t inner_b = i + static_cast<std::size_t>(it->second.width);
      std::size_t inner_e = it->second.close;
      if (it->second.width == 2 && depth < kMaxNesting) render_template(inner_b, inner_e, depth + 1, out);
      i = inner_e + static_cast<std::size_t>(it->second.width);
    }
  }

  struct Arg {
    std::size_t b, e;
    std::size_t eq;   // index of the first top-level '=' or npos
  };

  std::vector<Arg> split_args(std::size_t b, std::size_t e) {
    std::vector<Arg> args;
    std::size_t start = b, eq = std::string_view::npos;
    int link_depth = 0;
    std::size_t i = b;
    while (i < e) {
      char c = s_[i];
      if (c == '{') {
        auto it = spans_.find(i);
        if (it != spans_.end() && it->second.close < e) {
          i = it->second.close + static_cast<std::size_t>(it->second.width);
          continue;
        }
      } else if (c == '[' && i + 1 < e && s_[i + 1] == '[') {
        ++link_depth;
        i += 2;
        continue;
      } else if (c == ']' && i + 1 < e && s_[i + 1] == ']' && link_depth > 0) {
        --link_depth;
        i += 2;
        continue;
      } else if (c == '|' && link_depth == 0) {
        args.push_back({start, i, eq});
        start = i + 1;
        eq = std::string_view::npos;
      } else if (c == '=' && link_depth == 0 && eq == std::string_view::npos && !args.empty()) {
        eq = i;
      }
      ++i;
    }
    args.push_back({start, e, eq});
    return args;
  }

  std::string arg_text(const Arg& a, std::size_t from, int depth) {
    std::string out;
    render(from, a.e, depth, out);
    return std::string(trim_view(out));
  }

  void render_template(std::size_t b, std::size_t e, int depth, std::string& out) {
    std::vector<Arg> args = split_args(b, e);
    std::string name = normalize_name(s_.substr(args[0].b, args[0].e - args[0].b));
    // Parser functions and magic variables ({{#if:}}, {{DEFAULTSORT:}}, {{PAGENAME}}) and
    // templates not in the table below leave nothing in prose.
    if (name.empty() || name[0] == '#' || name.find(':') != std::string::npos) return;
    std::vector<std::string> positional;
    std::unordered_map<std::string, std::string> named;
    auto load_args = [&] {
      for (std::size_t k = 1; k < args.size(); ++k) {
        const Arg& a = args[k];
        if (a.eq != std::string_view::npos)
          named[normalize_name(s_.substr(a.b, a.eq - a.b))] = arg_text(a, a.eq + 1, depth);
        else
          positional.push_back(arg_text(a, a.b, depth));
      }
    };
    auto pos = [&](std::size_t k) { return k < positional.size() ? positional[k] : std::string(); };

    static const std::unordered_set<std::string> first_arg_templates = {
        "nowrap", "nobr", "small", "smaller", "big", "bigger", "larger", "midsize", "serif",
        "sans-serif", "center", "ill", "interlanguage link", "abbr", "abbrlink", "sic",
        "visible anchor", "vanchor", "nowrap begin", "lang-en", "lit", "literally", "em",
        "strong", "text", "mono", "var", "linktext", "plainlink", "keypress", "not a typo",
        "proper name", "as written", "notatypo", "wikt-lang"};
    static const std::unordered_set<std::string> quote_templates = {
        "quote", "blockquote", "quotation", "cquote", "quote box", "quote frame", "poem quote"};

    if (first_arg_templates.count(name) || name.rfind("lang-", 0) == 0) {
      load_args();
      out += pos(0);
    } else if (name == "lang" || name == "transl" || name == "transliteration" || name == "resize") {
      load_args();
      out += positional.empty() ? std::string() : positional.back();
    } else if (name == "convert" || name == "cvt") {
      load_args();
      render_convert(positional, out);
    } else if (name == "as of") {
      load_args();
      out += "As of " + pos(0);
    } else if (name == "circa" || name == "c.") {
      load_args();
      out += "c. " + pos(0);
    } else if (name == "frac" || name == "fraction" || name == "sfrac") {
      load_args();
      if (positional.size() >= 3) out += positional[0] + " " + positional[1] + "/" + positional[2];
      else if (positional.size() == 2) out += positional[0] + "/" + positional[1];
      else if (positional.size() == 1) out += "1/" + positional[0];
    } else if (name == "val") {
      load_args();
      out += pos(0);
      if (named.count("u")) out += " " + named["u"];
    } else if (name == "nbsp" || name == "spaces" || name == "space") {
      out += ' ';
    } else if (name == "ndash" || name == "snd" || name == "spaced ndash" || name == "spnd") {
      out += name == "ndash" ? "\xE2\x80\x93" : " \xE2\x80\x93 ";
    } else if (name == "mdash" || name == "spaced mdash") {
      out += "\xE2\x80\x94";
    } else if (quote_templates.count(name)) {
      load_args();
      std::string text = named.count("text") ? named["text"] : named.count("quote") ? named["quote"] : pos(0);
      if (!text.empty()) out += "\n\n" + text + "\n\n";
    }
  }

  // {{convert|5|km|mi}} -> "5 km"; {{convert|3|to|5|m}} -> "3 to 5 m".
  static void render_convert(const std::vector<std::string>& p, std::string& out) {
    if (p.empty()) return;
    static const std::unordered_map<std::string, std::string> units = {
        {"C", "\xC2\xB0" "C"}, {"F", "\xC2\xB0" "F"}, {"K", "K"}, {"sqmi", "square miles"},
        {"km2", "km\xC2\xB2"}, {"m2", "m\xC2\xB2"}, {"sqft", "square feet"}, {"ha", "hectares"}};
    auto unit = [&](const std::string& u) {
      auto it = units.find(u);
      return it == units.end() ? u : it->second;
    };
    static const std::unordered_set<std::string> range_words = {"-", "to", "and", "or", "\xE2\x80\x93", "by", "x"};
    if (p.size() >= 4 && range_words.count(p[1])) {
      out += p[0] + (p[1] == "-" || p[1] == "\xE2\x80\x93" ? "\xE2\x80\x93" : " " + p[1] + " ") + p[2] + " " + unit(p[3]);
    } else if (p.size() >= 2) {
      out += p[0] + " " + unit(p[1]);
    } else {
      out += p[0];
    }
  }

  std::string_view s_;
  std::unordered_map<std::size_t, Span> spans_;
};

// ---------------------------------------------------------------------------------------
// Internal links: [[ ]] paired with a stack that is reset at every blank line, so one stray
// "[[" never swallows the paragraphs after it.
class LinkRenderer {
 public:
  explicit LinkRenderer(std::string_view s) : s_(s) { pair_brackets(); }

  std::string render_all() {
    std::string out;
    out.reserve(s_.size());
    render(0, s_.size(), 0, out);
    return out;
  }

 private:
  void pair_brackets() {
    std::vector<std::size_t> stack;
    std::size_t n = s_.size();
    for (std::size_t i = 0; i + 1 < n;) {
      if (s_[i] == '\n' && s_[i + 1] == '\n') { stack.clear(); i += 2; continue; }
      if (s_[i] == '[' && s_[i + 1] == '[') { stack.push_back(i); i += 2; continue; }
      if (s_[i] == ']' && s_[i + 1] == ']' && !stack.empty()) {
        close_[stack.back()] = i;
        stack.pop_back();
        i += 2;
        continue;
      }
      ++i;
    }
  }

  void render(std::size_t b, std::size_t e, int depth, std::string& out) {
    std::size_t i = b;
    while (i < e) {
      if (s_[i] != '[') {   // copy plain text up to the next bracket in one go
        std::size_t next = std::min(e, s_.find('[', i));
        out.append(s_, i, next - i);
        i = next;
        continue;
      }
      auto it = close_.find(i);
      if (it == close_.end() || it->second >= e) {
        out += s_[i++];
        continue;
      }
      if (depth < kMaxNesting) render_link(i + 2, it->second, depth + 1, out);
      i = it->second + 2;
    }
  }

  static bool is_language_code(const std::string& p) {
    if (p == "simple") return true;
    std::size_t i = 0;
    while (i < p.size() && std::islower(static_cast<unsigned char>(p[i]))) ++i;
    if (i < 2 || i > 3) return false;
    while (i < p.size()) {
      if (p[i] != '-') return false;
      std::size_t j = ++i;
      while (i < p.size() && std::isalnum(static_cast<unsigned char>(p[i]))) ++i;
      if (i == j) return false;
    }
    return true;
  }

  void render_link(std::size_t b, std::size_t e, int depth, std::string& out) {
    // The first '|' outside nested links splits target from label.
    std::size_t pipe = std::string_view::npos;
    for (std::size_t i = b; i < e; ++i) {
      if (s_[i] == '[') {
        auto it = close_.find(i);
        if (it != close_.end() && it->second < e) { i = it->second + 1; continue; }
      }
      if (s_[i] == '|') { pipe = i; break; }
    }
    std::string_view target = trim_view(s_.substr(b, (pipe == std::string_view::npos ? e : pipe) - b));
    bool leading_colon = !target.empty() && target[0] == ':';
    if (leading_colon) target = trim_view(target.substr(1));
    std::size_t colon = target.find(':');
    std::string prefix = colon == std::string_view::npos ? std::string() : normalize_name(target.substr(0, colon));
    static const std::unordered_set<std::string> media = {"file", "image", "media", "category"};
    static const std::unordered_set<std::string> interwiki = {
        "wikt", "wiktionary", "w", "wikipedia", "commons", "s", "wikisource", "q", "wikiquote",
        "b", "wikibooks", "n", "wikinews", "v", "wikiversity", "voy", "wikivoyage", "species",
        "d", "wikidata", "m", "meta", "mw"};
    if (!leading_colon && media.count(prefix)) return;            // images, captions, categories
    if (!leading_colon && pipe == std::string_view::npos && is_language_code(prefix)) return;  // interlanguage
    if (pipe != std::string_view::npos) {
      std::string label;
      render(pipe + 1, e, depth, label);
      if (!trim_view(label).empty()) { out += label; return; }
    }
    // Unpiped (or the pipe trick [[Foo (bar)|]]): show the target, without a namespace or
    // interwiki prefix, an anchor, or a disambiguating parenthesis when piped.
    std::string shown(target);
    if (colon != std::string_view::npos && (media.count(prefix) || interwiki.count(prefix) ||
                                            is_language_code(prefix) || pipe != std::string_view::npos))
      shown = std::string(trim_view(target.substr(colon + 1)));
    std::size_t hash = shown.find('#');
    if (hash == 0) shown = shown.substr(1);
    else if (hash != std::string::npos) shown.resize(hash);
    if (pipe != std::string_view::npos) {
      std::size_t paren = shown.find(" (");
      if (paren != std::string::npos && shown.back() == ')') shown.resize(paren);
    }
    std::replace(shown.begin(), shown.end(), '_', ' ');
    out += shown;
  }

  std::string_view s_;
  std::unordered_map<std::size_t, std::size_t> close_;
};

bool is_url_start(std::string_view s, std::size_t i) {
  static constexpr std::array<std::string_view, 14> schemes = {
      "http://", "https://", "ftp://", "ftps://", "sftp://", "irc://", "ircs://", "news:",
      "mailto:", "gopher://", "git://", "svn://", "tel:", "//"};
  for (auto scheme : schemes)
    if (starts_with_icase(s, i, scheme)) return true;
  return false;
}

const std::unordered_map<std::string, std::string>& named_entities() {
  static const std::unordered_map<std::string, std::string> table = {
      {"nbsp", "\xC2\xA0"}, {"amp", "&"}, {"lt", "<"}, {"gt", ">"}, {"quot", "\""},
      {"apos", "'"}, {"ndash", "\xE2\x80\x93"}, {"mdash", "\xE2\x80\x94"},
      {"minus", "\xE2\x88\x92"}, {"hellip", "\xE2\x80\xA6"}, {"times", "\xC3\x97"},
      {"divide", "\xC3\xB7"}, {"deg", "\xC2\xB0"}, {"middot", "\xC2\xB7"}, {"bull", "\xE2\x80\xA2"},
      {"thinsp", " "}, {"ensp", " "}, {"emsp", " "}, {"zwj", ""}, {"zwnj", ""}, {"shy", ""},
      {"lrm", ""}, {"rlm", ""}, {"lsquo", "\xE2\x80\x98"}, {"rsquo", "\xE2\x80\x99"},
      {"ldquo", "\xE2\x80\x9C"}, {"rdquo", "\xE2\x80\x9D"}, {"laquo", "\xC2\xAB"},
      {"raquo", "\xC2\xBB"}, {"copy", "\xC2\xA9"}, {"reg", "\xC2\xAE"}, {"trade", "\xE2\x84\xA2"},
      {"euro", "\xE2\x82\xAC"}, {"pound", "\xC2\xA3"}, {"yen", "\xC2\xA5"}, {"cent", "\xC2\xA2"},
      {"sect", "\xC2\xA7"}, {"para", "\xC2\xB6"}, {"frac12", "\xC2\xBD"}, {"frac14", "\xC2\xBC"},
      {"frac34", "\xC2\xBE"}, {"plusmn", "\xC2\xB1"}, {"micro", "\xC2\xB5"}, {"prime", "\xE2\x80\xB2"},
      {"Prime", "\xE2\x80\xB3"}, {"sup2", "\xC2\xB2"}, {"sup3", "\xC2\xB3"}, {"larr", "\xE2\x86\x90"},
      {"rarr", "\xE2\x86\x92"}, {"harr", "\xE2\x86\x94"}, {"le", "\xE2\x89\xA4"}, {"ge", "\xE2\x89\xA5"},
      {"ne", "\xE2\x89\xA0"}, {"asymp", "\xE2\x89\x88"}, {"infin", "\xE2\x88\x9E"},
      {"alpha", "\xCE\xB1"}, {"beta", "\xCE\xB2"}, {"gamma", "\xCE\xB3"}, {"delta", "\xCE\xB4"},
      {"pi", "\xCF\x80"}, {"mu", "\xCE\xBC"}, {"sigma", "\xCF\x83"}, {"omega", "\xCF\x89"},
      {"eacute", "\xC3\xA9"}, {"egrave", "\xC3\xA8"}, {"aacute", "\xC3\xA1"}, {"agrave", "\xC3\xA0"},
      {"ouml", "\xC3\xB6"}, {"uuml", "\xC3\xBC"}, {"auml", "\xC3\xA4"}, {"szlig", "\xC3\x9F"},
      {"ccedil", "\xC3\xA7"}, {"ntilde", "\xC3\xB1"}, {"oacute", "\xC3\xB3"}, {"iacute", "\xC3\xAD"},
      {"uacute", "\xC3\xBA"}, {"dagger", "\xE2\x80\xA0"}, {"Dagger", "\xE2\x80\xA1"},
      {"iexcl", "\xC2\xA1"}, {"iquest", "\xC2\xBF"}, {"ordm", "\xC2\xBA"}, {"ordf", "\xC2\xAA"}};
  return table;
}

struct Heading {
  int level = 0;
  std::string_view title;
};

bool parse_heading(std::string_view line, Heading& h) {
  std::string_view t = line;
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.remove_suffix(1);
  if (t.size() < 3 || t.front() != '=' || t.back() != '=') return false;
  std::size_t lead = 0, trail = 0;
  while (lead < t.size() && t[lead] == '=') ++lead;
  while (trail < t.size() && t[t.size() - 1 - trail] == '=') ++trail;
  int level = static_cast<int>(std::min({lead, trail, std::size_t(6)}));
  if (t.size() <= 2 * static_cast<std::size_t>(level)) return false;
  h.level = level;
  h.title = trim_view(t.substr(static_cast<std::size_t>(level), t.size() - 2 * static_cast<std::size_t>(level)));
  return !h.title.empty();
}

// Markup that must not survive in prose (tidy_paragraph's last scrub); &nbsp; becomes a space.
constexpr std::array<std::string_view, 12> kForbidden = {
    "<ref>", "</ref>", "{{", "}}", "[[", "]]", "{|", "|}", "<ref", "</ref", "&nbsp;", "''"};
constexpr int kScrubRounds = 4;

// Removes every occurrence of each forbidden token, one token after the other; true if
// anything changed.
bool scrub_round(std::string& s) {
  bool changed = false;
  for (auto token : kForbidden) {
    std::size_t at = s.find(token);
    if (at == std::string::npos) continue;
    std::string next;
    next.reserve(s.size());
    std::size_t from = 0;
    while (at != std::string::npos) {
      next.append(s, from, at - from);
      if (token == "&nbsp;") next += ' ';
      from = at + token.size();
      at = s.find(token, from);
    }
    next.append(s, from);
    s.swap(next);
    changed = true;
  }
  return changed;
}

// One pass that leaves no forbidden token: characters go onto a stack, and a token completed
// at its top is removed at once. Every prefix of the stack was checked when its last character
// arrived, so no token can be hiding inside it. Identity on text without tokens.
std::string scrub_to_fixed_point(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    out += c;
    for (auto token : kForbidden) {
      if (out.size() < token.size() || out.compare(out.size() - token.size(), token.size(), token) != 0) continue;
      out.resize(out.size() - token.size());
      if (token == "&nbsp;") out += ' ';
      break;   // what is left on the stack was clean already
    }
  }
  return out;
}

}  // namespace

namespace wikitext {

std::string strip_comments(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t open = s.find("<!--", i);
    if (open == std::string_view::npos) { out.append(s.substr(i)); break; }
    out.append(s.substr(i, open - i));
    std::size_t close = s.find("-->", open + 4);
    if (close == std::string_view::npos) break;   // unterminated: MediaWiki hides the rest too
    i = close + 3;
  }
  return out;
}

std::string strip_block_tags(std::string_view s) {
  const auto& dropping = content_dropping_tags();
  std::string out;
  out.reserve(s.size());
  // Per element name, the last closing tag found and the '>' after it. Searches only move
  // forward, so a remembered one still answers "the next closing tag after here" while it lies
  // ahead; a thousand unclosed <ref>s then cost one scan instead of one each (quadratic).
  struct Closing {
    std::size_t close = 0, gt = 0;
  };
  std::unordered_map<std::string, Closing> closings;
  std::size_t i = 0;
  TagShape tag;
  while (i < s.size()) {
    std::size_t lt = s.find('<', i);
    if (lt == std::string_view::npos) { out.append(s.substr(i)); break; }
    out.append(s.substr(i, lt - i));
    i = lt;
    if (!read_tag(s, lt, tag) || tag.closing || !dropping.count(tag.name)) {
      out += s[i++];
      continue;
    }
    if (tag.self_closing) { i = tag.end; continue; }
    auto [it, fresh] = closings.try_emplace(tag.name);
    Closing& c = it->second;
    if (fresh || (c.close != std::string_view::npos && c.close < tag.end)) {
      c.close = find_icase(s, "</" + tag.name, tag.end);
      c.gt = c.close == std::string_view::npos ? std::string_view::npos : s.find('>', c.close);
    }
    // Without a closing tag only the opening tag goes, so the rest of the article survives.
    i = c.gt == std::string_view::npos ? tag.end : c.gt + 1;
  }
  return out;
}

std::string expand_templates(std::string_view s) { return TemplateExpander(s).expand(); }

std::string strip_tables(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  int depth = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t nl = s.find('\n', i);
    std::size_t end = nl == std::string_view::npos ? s.size() : nl;
    std::string_view line = s.substr(i, end - i);
    std::size_t k = 0;
    while (k < line.size() && (line[k] == ' ' || line[k] == '\t' || line[k] == ':')) ++k;
    std::string_view body = line.substr(k);
    if (body.rfind("{|", 0) == 0) {
      if (depth++ == 0) out += '\n';   // a table is a block: the text around it is two paragraphs
    } else if (depth > 0) {
      if (body.rfind("|}", 0) == 0) --depth;
    } else {
      out.append(line);
      if (nl != std::string_view::npos) out += '\n';
    }
    if (nl == std::string_view::npos) break;
    i = nl + 1;
  }
  return out;
}

std::string replace_links(std::string_view s) { return LinkRenderer(s).render_all(); }

// Rewrites `s`: text between occurrences of `marker` is copied as it is; at each marker,
// `at_marker(i, out)` appends what the markup starting at s[i] becomes and returns the index
// to continue from (past the markup, or i + 1 after copying the marker when it is plain text).
template <class AtMarker>
std::string rewrite_at_markers(std::string_view s, char marker, AtMarker at_marker) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t next = std::min(s.size(), s.find(marker, i));
    out.append(s.substr(i, next - i));
    i = next;
    if (i < s.size()) i = at_marker(i, out);
  }
  return out;
}

std::string replace_external_links(std::string_view s) {
  // The next ']' or newline, remembered while it lies ahead: many unclosed "[http://..." on one
  // line would otherwise each scan to the line's end.
  std::size_t stop = 0;
  bool stop_known = false;
  return rewrite_at_markers(s, '[', [&](std::size_t i, std::string& out) {
    if (i + 1 < s.size() && s[i + 1] != '[' && is_url_start(s, i + 1)) {
      if (!stop_known || (stop != std::string_view::npos && stop < i + 1)) {
        stop = s.find_first_of("]\n", i + 1);
        stop_known = true;
      }
      std::size_t close = stop;
      if (close != std::string_view::npos && s[close] == ']') {
        std::string_view inner = s.substr(i + 1, close - i - 1);
        std::size_t space = inner.find_first_of(" \t");
        if (space != std::string_view::npos) out.append(trim_view(inner.substr(space + 1)));
        return close + 1;
      }
    }
    out += s[i];
    return i + 1;
  });
}

std::string strip_html_tags(std::string_view s) {
  const auto& known = known_html_tags();
  TagShape tag;
  return rewrite_at_markers(s, '<', [&](std::size_t i, std::string& out) {
    if (read_tag(s, i, tag) && known.count(tag.name)) {
      if (tag.name == "br") out += ' ';
      else if (is_block_tag(tag.name)) out += '\n';
      return tag.end;
    }
    out += s[i];
    return i + 1;
  });
}

std::string strip_magic_words(std::string_view s) {
  return rewrite_at_markers(s, '_', [&](std::size_t i, std::string& out) {
    if (i + 1 < s.size() && s[i + 1] == '_') {
      std::size_t j = i + 2;
      while (j < s.size() && std::isupper(static_cast<unsigned char>(s[j]))) ++j;
      if (j > i + 2 && j + 1 < s.size() && s[j] == '_' && s[j + 1] == '_') return j + 2;
    }
    out += s[i];
    return i + 1;
  });
}

std::string strip_quote_marks(std::string_view s) {
  return rewrite_at_markers(s, '\'', [&](std::size_t i, std::string& out) {
    std::size_t j = i;
    while (j < s.size() && s[j] == '\'') ++j;
    std::size_t run = j - i;
    if (run == 1) out += '\'';
    else if (run == 4) out += '\'';   // an apostrophe followed by bold
    // 2 (italic), 3 (bold), 5 (both): markup only.
    return j;
  });
}

std::string decode_html_entities(std::string_view s) {
  const auto& table = named_entities();
  return rewrite_at_markers(s, '&', [&](std::size_t i, std::string& out) {
    // Entities are short: look for the ';' in the next 12 bytes only, not to the end of text.
    std::size_t semi = s.substr(0, std::min(s.size(), i + 13)).find(';', i + 1);
    if (semi != std::string_view::npos) {
      std::string_view name = s.substr(i + 1, semi - i - 1);
      if (name.size() > 1 && name[0] == '#') {
        bool hex = name[1] == 'x' || name[1] == 'X';
        std::string digits(name.substr(hex ? 2 : 1));
        char* end = nullptr;
        unsigned long cp = digits.empty() ? 0 : std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
        if (!digits.empty() && end && *end == '\0' && cp > 0 && cp <= 0x10FFFF &&
            !(cp >= 0xD800 && cp <= 0xDFFF)) {
          if (cp >= 0x20 || cp == '\n' || cp == '\t') append_utf8(out, static_cast<std::uint32_t>(cp));
          return semi + 1;
        }
      } else if (auto it = table.find(std::string(name)); it != table.end()) {
        out += it->second;
        return semi + 1;
      }
    }
    out += s[i];
    return i + 1;
  });
}

std::string tidy_paragraph(std::string_view input) {
  // 1. Whitespace: every kind of space becomes one ASCII space; invisible characters go.
  std::string s;
  s.reserve(input.size());
  for (std::size_t i = 0; i < input.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(input[i]);
    auto next = [&](std::size_t k) { return i + k < input.size() ? static_cast<unsigned char>(input[i + k]) : 0; };
    if (c == 0xC2 && next(1) == 0xA0) { s += ' '; ++i; continue; }                          // no-break space
    if (c == 0xC2 && next(1) == 0xAD) { ++i; continue; }                                      // soft hyphen
    if (c == 0xE2 && next(1) == 0x80 && (next(2) >= 0x80 && next(2) <= 0x8A)) { s += ' '; i += 2; continue; }  // en/em/thin spaces
    if (c == 0xE2 && next(1) == 0x80 && (next(2) >= 0x8B && next(2) <= 0x8F)) { i += 2; continue; }  // zero-width, marks
    if (c == 0xE2 && next(1) == 0x80 && next(2) == 0xAF) { s += ' '; i += 2; continue; }       // narrow no-break space
    if (c == 0xEF && next(1) == 0xBB && next(2) == 0xBF) { i += 2; continue; }                // BOM
    if (c < 0x20 || c == 0x7F) { s += ' '; continue; }
    s += static_cast<char>(c);
  }
  // 2. Markup scrub: whatever survived the passes (unbalanced brackets, escaped tags) goes.
  //    Removing one token can join two halves of another, so repeat until nothing changes.
  //    Real text settles in a round or two; crafted nesting ("[{''{[") would need a round per
  //    level (quadratic), so after a few rounds one stack pass finishes the job in linear time.
  bool changed = true;
  for (int round = 0; changed && round < kScrubRounds; ++round) changed = scrub_round(s);
  if (changed) s = scrub_to_fixed_point(s);
  // 3. Spaces and punctuation left behind by removed references and templates:
  //    "word ." -> "word.", "( ; born 1900)" -> "(born 1900)", "()" -> "".
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ') {
      if (out.empty() || out.back() == ' ' || out.back() == '(') continue;
      std::size_t j = i;
      while (j < s.size() && s[j] == ' ') ++j;
      // "i.e. <math>…</math>." leaves "i.e. ." behind: one period, not two.
      if (j < s.size() && s[j] == '.' && out.back() == '.') { i = j; continue; }
      if (j < s.size() && std::strchr(",.;:!?)", s[j])) { i = j - 1; continue; }
      out += ' ';
      continue;
    }
    if (c == '(') {
      std::size_t j = i + 1;
      while (j < s.size() && std::strchr(" ,;:", s[j])) ++j;
      if (j < s.size() && s[j] == ')') {   // nothing but separators inside: drop the parentheses
        if (!out.empty() && out.back() == ' ') out.pop_back();
        i = j;
        continue;
      }
      out += '(';
      i = j - 1;
      continue;
    }
    if ((c == ',' || c == ';') && i + 1 < s.size()) {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && std::strchr(",.;)", s[j])) continue;   // ", ." or ";," left by a removal
    }
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  bool has_word = std::any_of(out.begin(), out.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || static_cast<unsigned char>(ch) >= 0x80;
  });
  return has_word ? out : std::string();
}

}  // namespace wikitext

std::vector<CleanSection> clean_wikitext(std::string_view input, const CleanOptions& options,
                                         const CancelCheck& cancelled) {
  using namespace wikitext;
  auto check_cancelled = [&] {
    if (cancelled && cancelled()) throw CleaningCancelled();
  };
  std::string s(input);
  for (auto pass : {strip_comments, strip_block_tags, expand_templates, strip_tables, replace_links,
                    replace_external_links, strip_html_tags, strip_magic_words, strip_quote_marks}) {
    check_cancelled();
    s = pass(s);
  }
  check_cancelled();

  std::unordered_set<std::string> dropped;
  for (const auto& title : options.drop_sections) dropped.insert(normalize_name(title));

  std::vector<CleanSection> sections;
  CleanSection current;
  bool current_dropped = false;
  int dropping_level = 0;   // level of the dropped heading whose subsections are dropped too
  std::string paragraph;
  std::string list_block;   // consecutive list items, one per line: one paragraph
  std::string section_text;

  auto add_paragraph = [&](const std::string& text) {
    if (current_dropped || text.empty()) return;
    if (!section_text.empty()) section_text += "\n\n";
    section_text += text;
  };
  auto end_paragraph = [&] {
    if (!paragraph.empty()) add_paragraph(tidy_paragraph(decode_html_entities(paragraph)));
    paragraph.clear();
    add_paragraph(list_block);
    list_block.clear();
  };
  auto end_section = [&] {
    end_paragraph();
    if (!current_dropped && !section_text.empty()) {
      current.text = std::move(section_text);
      sections.push_back(std::move(current));
    }
    section_text.clear();
    current = CleanSection{};
  };

  std::size_t i = 0, next_check = kCancelCheckBytes;
  while (i <= s.size()) {
    if (i >= next_check) {
      check_cancelled();
      next_check = i + kCancelCheckBytes;
    }
    std::size_t nl = s.find('\n', i);
    std::size_t end = nl == std::string::npos ? s.size() : nl;
    std::string_view line(s.data() + i, end - i);
    Heading heading;
    std::string_view body = trim_view(line);
    if (parse_heading(line, heading)) {
      end_section();
      std::string title = tidy_paragraph(decode_html_entities(heading.title));
      if (dropping_level > 0 && heading.level <= dropping_level) dropping_level = 0;
      if (dropping_level == 0 && dropped.count(normalize_name(title))) dropping_level = heading.level;
      current_dropped = dropping_level > 0;
      current.title = title;
      current.level = heading.level;
    } else if (body.empty() || body == "----" || body.rfind("----", 0) == 0) {
      end_paragraph();
    } else if (body[0] == '|' || body[0] == '!') {
      // Debris of a table or template that had no closing braces: never prose.
      end_paragraph();
    } else if (std::strchr("*#:;", body[0])) {
      // A list is one paragraph with one item per line, so the chunker keeps items whole and
      // groups short ones instead of making a chunk of each.
      if (!paragraph.empty()) {
        add_paragraph(tidy_paragraph(decode_html_entities(paragraph)));
        paragraph.clear();
      }
      std::size_t k = 0;
      while (k < body.size() && std::strchr("*#:;", body[k])) ++k;
      std::string item = options.keep_lists ? tidy_paragraph(decode_html_entities(body.substr(k))) : std::string();
      if (!item.empty()) {
        if (!list_block.empty()) list_block += '\n';
        list_block += item;
      }
    } else {
      if (!list_block.empty()) {   // prose after a list: the list was its own paragraph
        add_paragraph(list_block);
        list_block.clear();
      }
      if (!paragraph.empty()) paragraph += ' ';
      paragraph.append(body);
    }
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  end_section();
  return sections;
}

bool is_redirect_text(std::string_view wikitext) {
  std::string_view t = trim_view(wikitext);
  return starts_with_icase(t, 0, "#redirect");
}

bool is_disambiguation(std::string_view title, std::string_view wikitext) {
  if (lower(title).find("(disambiguation)") != std::string::npos) return true;
  if (wikitext.find("__DISAMBIG__") != std::string_view::npos) return true;
  static const std::unordered_set<std::string> names = {
      "disambig", "dab", "disamb", "hndis", "geodis", "numberdis", "mil-unit-dis", "letter-nb",
      "shipindex", "set index article", "sia", "roadindex", "mountainindex", "given name",
      "surname"};
  // The next '|' or '}' is remembered while it lies ahead: a page of unclosed "{{" would
  // otherwise scan to its end once per opener (quadratic).
  std::size_t end = 0;
  bool end_known = false;
  for (std::size_t at = wikitext.find("{{"); at != std::string_view::npos;
       at = wikitext.find("{{", at + 2)) {
    if (!end_known || (end != std::string_view::npos && end < at + 2)) {
      end = wikitext.find_first_of("|}", at + 2);
      end_known = true;
    }
    if (end == std::string_view::npos) break;
    if (end - at > 80) continue;
    std::string name = normalize_name(wikitext.substr(at + 2, end - at - 2));
    if (names.count(name) || name.find("disambiguation") != std::string::npos) return true;
  }
  return false;
}

}  // namespace lvmflow::ingest

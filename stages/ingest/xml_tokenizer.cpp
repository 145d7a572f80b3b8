#include "stages/ingest/xml_tokenizer.hpp"
#include "stages/common/utf8.hpp"

#include <cctype>
#include <cstring>

#include "pipeline/error.hpp"

namespace lvmflow::ingest {
namespace {

bool is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_name_char(int c) {
  return c > 0 && !is_space(c) && c != '/' && c != '>' && c != '=' && c != '<' && c != '"' &&
         c != '\'' && c != '&';
}


}  // namespace

void XmlTokenizer::fail(const std::string& what, const std::string& fix) const {
  throw Error(in_.where(), "malformed XML: " + what,
              fix.empty() ? "the dump is damaged or not a MediaWiki XML export" : fix);
}

void XmlTokenizer::skip_space() {
  while (is_space(in_.peek())) in_.advance(1);
}

void XmlTokenizer::skip_until(std::string_view terminator, const char* what) {
  while (true) {
    std::size_t avail = in_.fill(terminator.size());
    if (avail < terminator.size()) fail(std::string("unterminated ") + what);
    std::string_view window(in_.cursor(), avail);
    auto hit = window.find(terminator);
    if (hit != std::string_view::npos) {
      in_.advance(hit + terminator.size());
      return;
    }
    // Keep the last few bytes: the terminator may straddle the buffer end.
    in_.advance(avail - terminator.size() + 1);
  }
}

void XmlTokenizer::read_name(std::string& out) {
  out.clear();
  while (is_name_char(in_.peek())) out += static_cast<char>(in_.get());
  if (out.empty()) fail("expected an element or attribute name");
}

// At '&': appends the decoded character(s).
void XmlTokenizer::read_entity(std::string& out) {
  in_.advance(1);
  std::string name;
  while (true) {
    int c = in_.peek();
    if (c == ';') { in_.advance(1); break; }
    if (c < 0 || name.size() > 10 || !(std::isalnum(c) || c == '#'))
      fail("'&' that does not start an entity", "write a literal ampersand as &amp;");
    name += static_cast<char>(in_.get());
  }
  if (name == "lt") out += '<';
  else if (name == "gt") out += '>';
  else if (name == "amp") out += '&';
  else if (name == "quot") out += '"';
  else if (name == "apos") out += '\'';
  else if (name.size() > 1 && name[0] == '#') {
    bool hex = name[1] == 'x' || name[1] == 'X';
    std::string digits = name.substr(hex ? 2 : 1);
    char* end = nullptr;
    unsigned long cp = digits.empty() ? 0 : std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
    bool valid = !digits.empty() && end && *end == '\0' && cp > 0 && cp <= 0x10FFFF &&
                 !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!valid) fail("invalid character reference &" + name + ";");
    append_utf8(out, static_cast<std::uint32_t>(cp));
  } else {
    fail("unknown entity &" + name + ";",
         "XML defines only &lt; &gt; &amp; &quot; &apos; and numeric references");
  }
}

void XmlTokenizer::read_text(XmlEvent& ev) {
  ev.kind = XmlEvent::Text;
  ev.line = in_.line();
  ev.text.clear();
  while (true) {
    std::size_t avail = in_.fill(1);
    if (avail == 0) return;
    const char* p = in_.cursor();
    std::size_t run = 0;
    while (run < avail && p[run] != '<' && p[run] != '&') ++run;
    ev.text.append(p, run);
    in_.advance(run);
    if (ev.text.size() > kMaxText)
      fail("character data longer than 256 MiB", "a closing tag is probably missing");
    if (run < avail) {
      if (p[run] == '<') {
        // CDATA is character data too: fold it into this event.
        if (in_.starts_with("<![CDATA[")) {
          in_.advance(9);
          while (!in_.starts_with("]]>")) {
            int c = in_.get();
            if (c < 0) fail("unterminated CDATA section");
            ev.text += static_cast<char>(c);
          }
          in_.advance(3);
          continue;
        }
        return;
      }
      read_entity(ev.text);
    }
  }
}

void XmlTokenizer::read_end_tag(XmlEvent& ev) {
  in_.advance(2);   // "</"
  read_name(ev.name);
  skip_space();
  if (in_.get() != '>') fail("expected '>' to close </" + ev.name);
  if (open_.empty()) fail("closing tag </" + ev.name + "> without an open element");
  if (open_.back().first != ev.name)
    fail("closing tag </" + ev.name + "> does not match <" + open_.back().first +
         "> opened at line " + std::to_string(open_.back().second));
  open_.pop_back();
  ev.kind = XmlEvent::EndElement;
}

void XmlTokenizer::read_tag(XmlEvent& ev) {
  in_.advance(1);   // "<"
  read_name(ev.name);
  ev.attrs.clear();
  ev.self_closing = false;
  while (true) {
    skip_space();
    int c = in_.peek();
    if (c == '>') { in_.advance(1); break; }
    if (c == '/') {
      in_.advance(1);
      if (in_.get() != '>') fail("expected '>' after '/' in <" + ev.name);
      ev.self_closing = true;
      break;
    }
    if (c < 0) fail("the file ends inside the tag <" + ev.name);
    std::string attr;
    read_name(attr);
    skip_space();
    if (in_.get() != '=') fail("attribute '" + attr + "' of <" + ev.name + "> has no value");
    skip_space();
    int quote = in_.get();
    if (quote != '"' && quote != '\'') fail("attribute '" + attr + "' value must be quoted");
    std::string value;
    while (true) {
      int v = in_.peek();
      if (v < 0) fail("the file ends inside an attribute value of <" + ev.name + ">");
      if (v == quote) { in_.advance(1); break; }
      if (v == '<') fail("'<' inside an attribute value of <" + ev.name + ">");
      if (v == '&') read_entity(value);
      else value += static_cast<char>(in_.get());
    }
    ev.attrs.emplace_back(std::move(attr), std::move(value));
  }
  if (open_.empty() && root_seen_) fail("a second root element <" + ev.name + ">");
  root_seen_ = true;
  ev.kind = XmlEvent::StartElement;
  if (ev.self_closing) {
    pending_end_ = true;
    pending_name_ = ev.name;
  } else {
    open_.emplace_back(ev.name, ev.line);
  }
}

void XmlTokenizer::next(XmlEvent& ev) {
  if (pending_end_) {
    pending_end_ = false;
    ev.kind = XmlEvent::EndElement;
    ev.name = pending_name_;
    return;
  }
  while (true) {
    ev.line = in_.line();
    int c = in_.peek();
    if (c < 0) {
      if (!open_.empty())
        fail("the file ends inside <" + open_.back().first + "> opened at line " +
                 std::to_string(open_.back().second),
             "the dump is truncated; download it again");
      if (!root_seen_) fail("no root element", "the file is not an XML document");
      ev.kind = XmlEvent::EndOfDocument;
      return;
    }
    if (c != '<') {
      if (open_.empty()) {
        // Outside the root only whitespace may appear.
        if (is_space(c)) { in_.advance(1); continue; }
        fail("text outside the root element");
      }
      read_text(ev);
      return;
    }
    if (in_.starts_with("<!--")) { in_.advance(4); skip_until("-->", "comment"); continue; }
    if (in_.starts_with("<?")) { in_.advance(2); skip_until("?>", "processing instruction"); continue; }
    if (in_.starts_with("<![CDATA[")) {
      if (open_.empty()) fail("CDATA outside the root element");
      read_text(ev);
      return;
    }
    if (in_.starts_with("<!")) {
      if (root_seen_) fail("declaration inside the document");
      in_.advance(2);
      skip_until(">", "declaration");
      continue;
    }
    if (in_.starts_with("</")) { read_end_tag(ev); return; }
    read_tag(ev);
    return;
  }
}

}  // namespace lvmflow::ingest

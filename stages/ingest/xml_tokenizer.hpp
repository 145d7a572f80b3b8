#pragma once
// A small streaming XML pull tokenizer: enough of XML 1.0 for MediaWiki export dumps
// (elements, attributes, character data, the five predefined entities and numeric character
// references, CDATA, comments, processing instructions, a DOCTYPE without internal subset).
// It checks that tags nest, and reports malformed input as lvmflow::Error with file:line.
#include <string>
#include <utility>
#include <vector>

#include "stages/ingest/text_input.hpp"

namespace lvmflow::ingest {

struct XmlEvent {
  enum Kind { StartElement, EndElement, Text, EndOfDocument };
  Kind kind = EndOfDocument;
  std::string name;                                         // element name (Start/End)
  std::vector<std::pair<std::string, std::string>> attrs;   // Start, values decoded
  std::string text;                                         // Text, entities decoded
  bool self_closing = false;                                // <x/>: an End event follows
  std::uint64_t line = 0;                                   // where the event starts
};

class XmlTokenizer {
 public:
  explicit XmlTokenizer(TextInput& in) : in_(in) {}
  // Fills `ev` with the next event; EndOfDocument once the root element closed and only
  // whitespace, comments or processing instructions follow.
  void next(XmlEvent& ev);
  std::size_t depth() const { return open_.size(); }
  TextInput& input() { return in_; }
  // Longest character data the tokenizer accepts in one piece; a longer run means a missing
  // closing tag, and memory must stay bounded.
  static constexpr std::size_t kMaxText = std::size_t(256) << 20;

 private:
  [[noreturn]] void fail(const std::string& what, const std::string& fix = {}) const;
  void read_text(XmlEvent& ev);
  void read_tag(XmlEvent& ev);
  void read_end_tag(XmlEvent& ev);
  void read_name(std::string& out);
  void skip_space();
  void skip_until(std::string_view terminator, const char* what);
  void read_entity(std::string& out);

  TextInput& in_;
  std::vector<std::pair<std::string, std::uint64_t>> open_;   // open elements and their lines
  bool root_seen_ = false;
  bool pending_end_ = false;    // a self-closing tag's End event is owed
  std::string pending_name_;
};

}  // namespace lvmflow::ingest

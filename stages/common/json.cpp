#include "stages/common/json.hpp"
#include "stages/common/utf8.hpp"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "pipeline/error.hpp"

namespace lvmflow {

Json::Json(std::int64_t i)
    : kind_(Kind::Number), is_integer_(true), number_(static_cast<double>(i)), integer_(i) {}

Json::Json(std::uint64_t i) : kind_(Kind::Number), number_(static_cast<double>(i)) {
  if (i <= static_cast<std::uint64_t>(INT64_MAX)) {
    is_integer_ = true;
    integer_ = static_cast<std::int64_t>(i);
  }
}

namespace {
const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Kind::Null: return "null";
    case Json::Kind::Bool: return "a boolean";
    case Json::Kind::Number: return "a number";
    case Json::Kind::String: return "a string";
    case Json::Kind::Array: return "an array";
    case Json::Kind::Object: return "an object";
  }
  return "?";
}

[[noreturn]] void wrong_kind(const std::string& where, const char* wanted, Json::Kind got) {
  throw Error(where, std::string("expected ") + wanted + ", found " + kind_name(got));
}
}  // namespace

bool Json::as_bool(const std::string& where) const {
  if (kind_ != Kind::Bool) wrong_kind(where, "a boolean", kind_);
  return bool_;
}

double Json::as_double(const std::string& where) const {
  if (kind_ != Kind::Number) wrong_kind(where, "a number", kind_);
  return number_;
}

std::int64_t Json::as_int(const std::string& where) const {
  if (kind_ != Kind::Number) wrong_kind(where, "an integer", kind_);
  if (is_integer_) return integer_;
  // Accept 12.0 (some writers emit integral floats) but not 12.5.
  if (std::nearbyint(number_) == number_ && std::fabs(number_) < 9.0e15)
    return static_cast<std::int64_t>(number_);
  throw Error(where, "expected an integer, found " + dump());
}

const std::string& Json::as_string(const std::string& where) const {
  if (kind_ != Kind::String) wrong_kind(where, "a string", kind_);
  return string_;
}

const Json::Array& Json::as_array(const std::string& where) const {
  if (kind_ != Kind::Array) wrong_kind(where, "an array", kind_);
  return array_;
}

const Json::Object& Json::as_object(const std::string& where) const {
  if (kind_ != Kind::Object) wrong_kind(where, "an object", kind_);
  return object_;
}

Json::Array& Json::mutable_array() {
  if (kind_ == Kind::Null) kind_ = Kind::Array;
  if (kind_ != Kind::Array) wrong_kind("json", "an array", kind_);
  return array_;
}

Json::Object& Json::mutable_object() {
  if (kind_ == Kind::Null) kind_ = Kind::Object;
  if (kind_ != Kind::Object) wrong_kind("json", "an object", kind_);
  return object_;
}

const Json* Json::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  auto it = object_.find(key);
  return it == object_.end() ? nullptr : &it->second;
}

const Json& Json::at(const std::string& key, const std::string& where) const {
  const Json* v = find(key);
  if (!v) {
    if (kind_ != Kind::Object) wrong_kind(where, "an object", kind_);
    throw Error(where, "missing key \"" + key + "\"");
  }
  return *v;
}

Json& Json::operator[](const std::string& key) { return mutable_object()[key]; }

namespace {
void dump_string(std::string& out, const std::string& s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void newline(std::string& out, int indent, int depth) {
  if (indent <= 0) return;
  out += '\n';
  out.append(static_cast<std::size_t>(indent * depth), ' ');
}
}  // namespace

void Json::dump_to(std::string& out, int indent, int depth) const {
  switch (kind_) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += bool_ ? "true" : "false"; break;
    case Kind::Number: {
      char buf[40];
      std::to_chars_result r;
      if (is_integer_) {
        r = std::to_chars(buf, buf + sizeof buf, integer_);
      } else if (!std::isfinite(number_)) {
        out += "null";  // JSON has no NaN/Inf
        break;
      } else {
        r = std::to_chars(buf, buf + sizeof buf, number_);  // shortest round-trip form
      }
      out.append(buf, r.ptr);
      break;
    }
    case Kind::String: dump_string(out, string_); break;
    case Kind::Array: {
      out += '[';
      for (std::size_t i = 0; i < array_.size(); ++i) {
        if (i) out += ',';
        newline(out, indent, depth + 1);
        array_[i].dump_to(out, indent, depth + 1);
      }
      if (!array_.empty()) newline(out, indent, depth);
      out += ']';
      break;
    }
    case Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : object_) {
        if (!first) out += ',';
        first = false;
        newline(out, indent, depth + 1);
        dump_string(out, k);
        out += indent > 0 ? ": " : ":";
        v.dump_to(out, indent, depth + 1);
      }
      if (!object_.empty()) newline(out, indent, depth);
      out += '}';
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  return out;
}

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& where) : s_(text), where_(where) {}

  Json parse_document() {
    Json v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;  // guards the recursion against hostile input

  [[noreturn]] void fail(const std::string& why) const {
    throw Error(where_, "invalid JSON at offset " + std::to_string(pos_) + ": " + why,
                "check that the file is complete and was written as JSON");
  }

  void skip_space() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool consume_literal(std::string_view lit) {
    if (s_.substr(pos_, lit.size()) != lit) return false;
    pos_ += lit.size();
    return true;
  }

  Json parse_value(int depth) {
    if (depth > kMaxDepth) fail("nesting too deep");
    skip_space();
    if (pos_ >= s_.size()) fail("unexpected end of input");
    char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return Json(parse_string());
    if (consume_literal("true")) return Json(true);
    if (consume_literal("false")) return Json(false);
    if (consume_literal("null")) return Json();
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    fail(std::string("unexpected character '") + c + "'");
  }

  Json parse_object(int depth) {
    ++pos_;  // '{'
    Json obj{Json::Object{}};
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return obj;
    }
    while (true) {
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key");
      std::string key = parse_string();
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after a key");
      ++pos_;
      obj.object_[std::move(key)] = parse_value(depth + 1);
      skip_space();
      if (pos_ >= s_.size()) fail("unexpected end of input inside an object");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == '}') { ++pos_; return obj; }
      fail("expected ',' or '}' in an object");
    }
  }

  Json parse_array(int depth) {
    ++pos_;  // '['
    Json arr{Json::Array{}};
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return arr;
    }
    while (true) {
      arr.array_.push_back(parse_value(depth + 1));
      skip_space();
      if (pos_ >= s_.size()) fail("unexpected end of input inside an array");
      if (s_[pos_] == ',') { ++pos_; continue; }
      if (s_[pos_] == ']') { ++pos_; return arr; }
      fail("expected ',' or ']' in an array");
    }
  }

  unsigned parse_hex4() {
    if (pos_ + 4 > s_.size()) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= unsigned(c - '0');
      else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
      else fail("bad hex digit in \\u escape");
    }
    return v;
  }


  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // surrogate pair
            if (!consume_literal("\\u")) fail("unpaired surrogate in \\u escape");
            unsigned lo = parse_hex4();
            if (lo < 0xDC00 || lo >= 0xE000) fail("bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: fail(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  Json parse_number() {
    std::size_t start = pos_;
    bool integral = true;
    if (s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      std::size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (digits() == 0) fail("expected digits in a number");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (digits() == 0) fail("expected digits after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) fail("expected digits in an exponent");
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + pos_;
    if (integral) {
      std::int64_t i = 0;
      auto r = std::from_chars(first, last, i);
      if (r.ec == std::errc() && r.ptr == last) return Json(i);
    }
    double d = 0;
    auto r = std::from_chars(first, last, d);
    if (r.ec != std::errc() || r.ptr != last) fail("number out of range");
    return Json(d);
  }

  std::string_view s_;
  std::string where_;
  std::size_t pos_ = 0;
};

Json Json::parse(std::string_view text, const std::string& where) {
  return JsonParser(text, where).parse_document();
}

Json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path, "cannot open JSON file", "check that the file exists and is readable");
  std::ostringstream ss;
  ss << in.rdbuf();
  return Json::parse(ss.str(), path);
}

void write_json_file(const std::string& path, const Json& value) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path, "cannot write JSON file", "check that the folder exists and is writable");
  out << value.dump(2) << '\n';
  out.flush();
  if (!out) throw Error(path, "failed writing JSON file", "check free disk space");
}

}  // namespace lvmflow

#pragma once
// Minimal streaming JSON writer for the CLI's --json output.
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

namespace lvmflow {

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}
  JsonWriter& begin_object() { value_prefix(); out_ << '{'; first_.push_back(true); return *this; }
  JsonWriter& end_object() { out_ << '}'; first_.pop_back(); return *this; }
  JsonWriter& begin_array() { value_prefix(); out_ << '['; first_.push_back(true); return *this; }
  JsonWriter& end_array() { out_ << ']'; first_.pop_back(); return *this; }
  JsonWriter& key(const std::string& k) {
    comma();
    string_literal(k);
    out_ << ':';
    after_key_ = true;
    return *this;
  }
  JsonWriter& value(const std::string& s) { value_prefix(); string_literal(s); return *this; }
  JsonWriter& value(const char* s) { return value(std::string(s)); }
  JsonWriter& value(bool b) { value_prefix(); out_ << (b ? "true" : "false"); return *this; }
  JsonWriter& value(long long v) { value_prefix(); out_ << v; return *this; }
  JsonWriter& value(long v) { return value(static_cast<long long>(v)); }
  JsonWriter& value(int v) { return value(static_cast<long long>(v)); }
  JsonWriter& value(double v) {
    value_prefix();
    if (!std::isfinite(v)) { out_ << "null"; return *this; }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    out_ << buf;
    return *this;
  }
  template <class T>
  JsonWriter& field(const std::string& k, const T& v) { key(k); return value(v); }

 private:
  void comma() {
    if (!first_.empty()) {
      if (!first_.back()) out_ << ',';
      first_.back() = false;
    }
  }
  void value_prefix() {
    if (after_key_) { after_key_ = false; return; }
    comma();
  }
  void string_literal(const std::string& s) {
    out_ << '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"': out_ << "\\\""; break;
        case '\\': out_ << "\\\\"; break;
        case '\n': out_ << "\\n"; break;
        case '\r': out_ << "\\r"; break;
        case '\t': out_ << "\\t"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out_ << buf;
          } else {
            out_ << c;
          }
      }
    }
    out_ << '"';
  }
  std::ostream& out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace lvmflow

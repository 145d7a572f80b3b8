#include "stages/common/json.hpp"

#include <nlohmann/json.hpp>

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

constexpr std::size_t kMaxDepth = 512;   // deeper documents are refused, not parsed recursively

// nlohmann's SAX events -> our value tree. The parser itself is nlohmann's; this only builds
// the Json values the rest of lvmflow reads, and turns its errors into lvmflow::Error.
class TreeBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit TreeBuilder(const std::string& where) : where_(where) {}
  Json take() { return std::move(root_); }

  bool null() override { return add(Json()); }
  bool boolean(bool b) override { return add(Json(b)); }
  bool number_integer(number_integer_t i) override { return add(Json(static_cast<std::int64_t>(i))); }
  bool number_unsigned(number_unsigned_t u) override { return add(Json(static_cast<std::uint64_t>(u))); }
  bool number_float(number_float_t d, const string_t&) override { return add(Json(d)); }
  bool string(string_t& s) override { return add(Json(std::move(s))); }
  bool binary(binary_t&) override { return false; }   // JSON text has no binary values
  bool start_object(std::size_t) override { return open(Json(Json::Object{})); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(Json(Json::Array{})); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> the text after the prefix.
    std::string what = e.what();
    if (auto p = what.find("] "); p != std::string::npos) what = what.substr(p + 2);
    throw Error(where_, "invalid JSON at offset " + std::to_string(position) + ": " + what,
                "fix or regenerate the file");
  }

 private:
  Json* add(Json v, bool container) {
    Json* placed;
    if (stack_.empty()) {
      root_ = std::move(v);
      placed = &root_;
    } else if (stack_.back()->is_array()) {
      auto& a = stack_.back()->mutable_array();
      a.push_back(std::move(v));
      placed = &a.back();
    } else {
      placed = &(stack_.back()->mutable_object()[key_] = std::move(v));
    }
    if (container) stack_.push_back(placed);
    return placed;
  }
  bool add(Json v) { return add(std::move(v), false) != nullptr; }
  bool open(Json v) {
    if (stack_.size() >= kMaxDepth)
      throw Error(where_, "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels",
                  "lvmflow's JSON files are flat; is this the right file?");
    return add(std::move(v), true) != nullptr;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  std::string where_;
  Json root_;
  std::vector<Json*> stack_;   // open containers; parents never change while a child is open
  std::string key_;
};

nlohmann::json to_library(const Json& v) {
  switch (v.kind()) {
    case Json::Kind::Null: return nullptr;
    case Json::Kind::Bool: return v.as_bool();
    case Json::Kind::Number:
      if (v.is_integer()) return v.as_int();
      return v.as_double();   // NaN/Inf are written as null
    case Json::Kind::String: return v.as_string();
    case Json::Kind::Array: {
      nlohmann::json a = nlohmann::json::array();
      for (const Json& x : v.as_array()) a.push_back(to_library(x));
      return a;
    }
    case Json::Kind::Object: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& [k, x] : v.as_object()) o[k] = to_library(x);
      return o;
    }
  }
  return nullptr;
}

}  // namespace

std::string Json::dump(int indent) const {
  // Invalid UTF-8 in a string becomes U+FFFD instead of an exception.
  return to_library(*this).dump(indent > 0 ? indent : -1, ' ', /*ensure_ascii=*/false,
                                nlohmann::json::error_handler_t::replace);
}

Json Json::parse(std::string_view text, const std::string& where) {
  TreeBuilder builder(where);
  nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  return builder.take();
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

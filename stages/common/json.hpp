#pragma once
// The JSON values lvmflow exchanges with the Python world (safetensors headers, Hugging Face
// config.json / modules.json, model.json, encoder.json). Parsing and writing are
// nlohmann-json's (Debian nlohmann-json3-dev); this class is the small value type the code
// reads, with typed accessors whose errors name the file and the key. Numbers are doubles
// (plus the exact integer when the text is one); objects keep their keys sorted. Torch-free.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace lvmflow {

class Json {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  using Array = std::vector<Json>;
  using Object = std::map<std::string, Json>;

  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::Bool), bool_(b) {}
  Json(double d) : kind_(Kind::Number), number_(d) {}
  Json(int i) : Json(static_cast<std::int64_t>(i)) {}
  Json(std::int64_t i);
  Json(std::uint64_t i);
  Json(const char* s) : kind_(Kind::String), string_(s) {}
  Json(std::string s) : kind_(Kind::String), string_(std::move(s)) {}
  Json(Array a) : kind_(Kind::Array), array_(std::move(a)) {}
  Json(Object o) : kind_(Kind::Object), object_(std::move(o)) {}

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_bool() const { return kind_ == Kind::Bool; }
  bool is_number() const { return kind_ == Kind::Number; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_object() const { return kind_ == Kind::Object; }
  // True for a number written without fraction/exponent that fits in int64 exactly.
  bool is_integer() const { return kind_ == Kind::Number && is_integer_; }

  // Typed access; throw lvmflow::Error naming `where` when the kind differs.
  bool as_bool(const std::string& where = "json") const;
  double as_double(const std::string& where = "json") const;
  std::int64_t as_int(const std::string& where = "json") const;
  const std::string& as_string(const std::string& where = "json") const;
  const Array& as_array(const std::string& where = "json") const;
  const Object& as_object(const std::string& where = "json") const;
  Array& mutable_array();
  Object& mutable_object();

  // Object lookup: nullptr when absent (or when this is not an object).
  const Json* find(const std::string& key) const;
  // Object lookup that throws lvmflow::Error naming `where` and the key when it is absent.
  const Json& at(const std::string& key, const std::string& where = "json") const;
  // Object member assignment (turns a null into an object).
  Json& operator[](const std::string& key);

  // Compact text (no spaces) unless indent > 0.
  std::string dump(int indent = 0) const;

  // Throws lvmflow::Error("<where>", "invalid JSON at offset N: ...") on bad input.
  static Json parse(std::string_view text, const std::string& where = "json");

 private:
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  bool is_integer_ = false;
  double number_ = 0;
  std::int64_t integer_ = 0;
  std::string string_;
  Array array_;
  Object object_;
};

// Reads and parses a JSON file; errors name the file.
Json read_json_file(const std::string& path);
// Writes `value.dump(2)` plus a newline.
void write_json_file(const std::string& path, const Json& value);

}  // namespace lvmflow

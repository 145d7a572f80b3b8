#pragma once
// Typed stage parameters. Each stage type documents its params (name, type, default, help);
// the spec is checked against those docs before anything runs, and the checked values are
// what stages read and what the cache key hashes (in canonical form).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lvmflow {

enum class ParamType { String, Int, Float, Bool, StringList, Path };
const char* to_string(ParamType t);

struct ParamDoc {
  std::string name;
  ParamType type = ParamType::String;
  std::string default_value;   // canonical text; empty + !required means "unset"
  std::string help;
  bool required = false;
  // When false the param does not enter the cache key (e.g. a thread count or a log level:
  // it changes how a stage runs, not what it produces).
  bool affects_output = true;
};

// One checked param value, kept in canonical text form: ints in decimal, floats with
// round-trip precision, bools as true/false, lists as [a, b], paths made absolute.
struct ParamValue {
  ParamType type = ParamType::String;
  std::string canonical;
  std::vector<std::string> list;   // for StringList
};

class Params {
 public:
  void set(const std::string& name, ParamValue v) { values_[name] = std::move(v); }
  bool has(const std::string& name) const { return values_.count(name) != 0; }

  std::string get_string(const std::string& name) const;
  std::int64_t get_int(const std::string& name) const;
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  std::vector<std::string> get_list(const std::string& name) const;
  std::string get_path(const std::string& name) const { return get_string(name); }

  const std::map<std::string, ParamValue>& values() const { return values_; }

 private:
  const ParamValue& find(const std::string& name) const;
  std::map<std::string, ParamValue> values_;
};

// Parses `text` as a value of `type`; returns nullopt (and sets `why`) when it does not fit.
std::optional<ParamValue> parse_param_value(ParamType type, const std::string& text,
                                            std::string* why);
ParamValue make_list_value(const std::vector<std::string>& items);

}  // namespace lvmflow

namespace lvmflow {

struct StageInfo;

// A param as written in the spec (or on the command line), before checking.
struct RawParam {
  std::string text;                 // scalar text
  bool is_list = false;
  std::vector<std::string> items;   // list items when is_list
  std::string where;                // file:line:col, for errors
};

// Checks raw params against a stage type's docs: unknown names (listing the valid ones),
// wrong types, missing required params; fills defaults; makes Path params absolute against
// `base_dir`. Throws lvmflow::Error naming `where` (or the param's own location).
Params check_params(const StageInfo& info, const std::map<std::string, RawParam>& raw,
                    const std::string& base_dir, const std::string& where);

}  // namespace lvmflow

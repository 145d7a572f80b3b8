#include "pipeline/params.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "pipeline/error.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {

const char* to_string(ParamType t) {
  switch (t) {
    case ParamType::String: return "string";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::StringList: return "list";
    case ParamType::Path: return "path";
  }
  return "?";
}

namespace {
std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// "[a, b]" or "a,b" -> items (used for --set overrides and defaults).
std::vector<std::string> split_list_text(const std::string& text) {
  std::string t = trim(text);
  if (!t.empty() && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  std::vector<std::string> items;
  if (trim(t).empty()) return items;
  std::size_t start = 0;
  while (true) {
    auto comma = t.find(',', start);
    items.push_back(trim(t.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}
}  // namespace

ParamValue make_list_value(const std::vector<std::string>& items) {
  ParamValue v;
  v.type = ParamType::StringList;
  v.list = items;
  v.canonical = "[";
  for (std::size_t i = 0; i < items.size(); ++i) v.canonical += (i ? ", " : "") + items[i];
  v.canonical += "]";
  return v;
}

std::optional<ParamValue> parse_param_value(ParamType type, const std::string& raw_text,
                                            std::string* why) {
  std::string text = trim(raw_text);
  ParamValue v;
  v.type = type;
  switch (type) {
    case ParamType::String:
    case ParamType::Path:
      v.canonical = text;
      return v;
    case ParamType::Int: {
      long long n = 0;
      auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (text.empty() || ec != std::errc() || p != text.data() + text.size()) {
        if (why) *why = "expects an integer, got '" + text + "'";
        return std::nullopt;
      }
      v.canonical = std::to_string(n);
      return v;
    }
    case ParamType::Float: {
      char* end = nullptr;
      errno = 0;
      double d = std::strtod(text.c_str(), &end);
      if (text.empty() || errno || *end != '\0' || !std::isfinite(d)) {
        if (why) *why = "expects a number, got '" + text + "'";
        return std::nullopt;
      }
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", d);
      v.canonical = buf;
      return v;
    }
    case ParamType::Bool:
      if (text == "true" || text == "yes" || text == "on" || text == "1") v.canonical = "true";
      else if (text == "false" || text == "no" || text == "off" || text == "0") v.canonical = "false";
      else {
        if (why) *why = "expects true or false, got '" + text + "'";
        return std::nullopt;
      }
      return v;
    case ParamType::StringList:
      return make_list_value(split_list_text(text));
  }
  return std::nullopt;
}

const ParamValue& Params::find(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end())
    throw Error("params", "param '" + name + "' is not set", "set it in the stage's params");
  return it->second;
}

std::string Params::get_string(const std::string& name) const { return find(name).canonical; }
std::int64_t Params::get_int(const std::string& name) const {
  return std::stoll(find(name).canonical);
}
double Params::get_float(const std::string& name) const {
  return std::stod(find(name).canonical);
}
bool Params::get_bool(const std::string& name) const { return find(name).canonical == "true"; }
std::vector<std::string> Params::get_list(const std::string& name) const {
  const auto& v = find(name);
  return v.type == ParamType::StringList ? v.list : split_list_text(v.canonical);
}

Params check_params(const StageInfo& info, const std::map<std::string, RawParam>& raw,
                    const std::string& base_dir, const std::string& where) {
  std::string valid;
  for (const auto& doc : info.params) valid += (valid.empty() ? "" : ", ") + doc.name;
  for (const auto& [name, value] : raw) {
    bool known = false;
    for (const auto& doc : info.params) known = known || doc.name == name;
    if (!known)
      throw Error(value.where.empty() ? where : value.where,
                  "unknown param '" + name + "' for stage type '" + info.type + "'",
                  valid.empty() ? "this stage type takes no params" : "valid params: " + valid);
  }
  Params params;
  for (const auto& doc : info.params) {
    auto it = raw.find(doc.name);
    std::string param_where = it != raw.end() && !it->second.where.empty() ? it->second.where : where;
    std::optional<ParamValue> value;
    std::string why;
    if (it == raw.end()) {
      if (doc.required)
        throw Error(where, "missing required param '" + doc.name + "' (" + to_string(doc.type) +
                               ") for stage type '" + info.type + "'",
                    doc.help);
      if (doc.default_value.empty() && doc.type != ParamType::StringList) continue;
      value = parse_param_value(doc.type, doc.default_value, &why);
    } else if (it->second.is_list) {
      if (doc.type != ParamType::StringList)
        throw Error(param_where, "param '" + doc.name + "' expects " + to_string(doc.type) +
                                     ", got a list");
      value = make_list_value(it->second.items);
    } else {
      value = parse_param_value(doc.type, it->second.text, &why);
    }
    if (!value) throw Error(param_where, "param '" + doc.name + "' " + why, doc.help);
    if (doc.type == ParamType::Path && !value->canonical.empty()) {
      std::filesystem::path p(value->canonical);
      if (p.is_relative()) p = std::filesystem::path(base_dir) / p;
      value->canonical = p.lexically_normal().string();
    }
    params.set(doc.name, std::move(*value));
  }
  if (info.validate) {
    try {
      info.validate(params);
    } catch (const Error& e) {
      throw Error(where, e.problem(), e.fix());
    }
  }
  return params;
}

}  // namespace lvmflow

#include "pipeline/spec.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "pipeline/error.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

const StageSpec* PipelineSpec::find(const std::string& n) const {
  for (const auto& s : stages)
    if (s.name == n) return &s;
  return nullptr;
}

namespace {

class SpecReader {
 public:
  SpecReader(fs::path file, const StageRegistry& registry) : file_(std::move(file)), registry_(registry) {}

  std::string at(const YAML::Node& node) const {
    auto m = node.Mark();
    if (m.line < 0) return file_.string();
    return file_.string() + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  }

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what, const std::string& fix = {}) const {
    throw Error(at(node), what, fix);
  }

  std::string scalar(const YAML::Node& node, const std::string& what) const {
    if (!node.IsScalar()) fail(node, what + " must be a single value");
    return node.Scalar();
  }

  // Replaces ${env:NAME} and ${name} in `text`; `loop` holds foreach variables.
  std::string substitute(const std::string& text, const YAML::Node& where,
                         const std::map<std::string, std::string>& loop) const {
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
      auto open = text.find("${", i);
      if (open == std::string::npos) {
        out += text.substr(i);
        break;
      }
      auto close = text.find('}', open);
      if (close == std::string::npos) fail(where, "unterminated '${' in '" + text + "'", "write ${name}");
      out += text.substr(i, open - i);
      std::string name = text.substr(open + 2, close - open - 2);
      if (name.rfind("env:", 0) == 0) {
        const char* v = std::getenv(name.substr(4).c_str());
        if (!v) fail(where, "environment variable '" + name.substr(4) + "' is not set",
                     "export it, or define a default in `vars:`");
        out += v;
      } else if (auto it = loop.find(name); it != loop.end()) {
        out += it->second;
      } else if (auto jt = vars_.find(name); jt != vars_.end()) {
        out += jt->second;
      } else {
        std::string known;
        for (const auto& [k, v] : vars_) known += (known.empty() ? "" : ", ") + k;
        for (const auto& [k, v] : loop) known += (known.empty() ? "" : ", ") + k;
        fail(where, "unknown variable '${" + name + "}'",
             known.empty() ? "define it under `vars:`" : "defined variables: " + known);
      }
      i = close + 1;
    }
    return out;
  }

  void read_vars(const YAML::Node& vars) {
    if (!vars) return;
    if (!vars.IsMap()) fail(vars, "`vars:` must be a mapping of name: value");
    for (const auto& kv : vars) {
      std::string name = kv.first.Scalar();
      vars_[name] = substitute(scalar(kv.second, "variable '" + name + "'"), kv.second, {});
    }
  }

  std::map<std::string, std::string> vars_;
  fs::path file_;
  const StageRegistry& registry_;
};

const std::set<std::string> kStageKeys = {"name", "type", "params", "inputs", "concurrency",
                                          "batch_size", "cache", "foreach"};
const std::set<std::string> kTopKeys = {"pipeline", "store", "vars", "stages", "description"};

bool valid_stage_name(const std::string& n) {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]*");
  return std::regex_match(n, re);
}

std::string closest(const std::string& word, const std::vector<std::string>& options) {
  // Levenshtein distance: suggest the nearest registered name for a typo.
  std::string best;
  std::size_t best_d = 4;
  for (const auto& o : options) {
    std::vector<std::size_t> prev(o.size() + 1), cur(o.size() + 1);
    for (std::size_t j = 0; j <= o.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= word.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= o.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (word[i - 1] != o[j - 1])});
      prev = cur;
    }
    if (prev[o.size()] < best_d) {
      best_d = prev[o.size()];
      best = o;
    }
  }
  return best;
}

int parse_positive(const SpecReader& r, const YAML::Node& node, const std::string& what,
                   const std::map<std::string, std::string>& loop) {
  std::string text = r.substitute(r.scalar(node, what), node, loop);
  std::string why;
  auto v = parse_param_value(ParamType::Int, text, &why);
  if (!v || std::stoll(v->canonical) < 1 || std::stoll(v->canonical) > 1000000)
    r.fail(node, what + " must be a positive integer, got '" + text + "'");
  return static_cast<int>(std::stoll(v->canonical));
}

}  // namespace

PipelineSpec load_spec(const fs::path& file, const StageRegistry& registry,
                       const std::vector<std::string>& overrides, const std::string& store_override) {
  std::ifstream in(file);
  if (!in) throw Error(file.string(), "cannot read pipeline file", "check the path");
  std::stringstream text;
  text << in.rdbuf();
  return parse_spec(text.str(), file, registry, overrides, store_override);
}

namespace {
PipelineSpec parse_checked(const std::string& yaml_text, const fs::path& file,
                           const StageRegistry& registry, const std::vector<std::string>& overrides,
                           const std::string& store_override);
}

PipelineSpec parse_spec(const std::string& yaml_text, const fs::path& file,
                        const StageRegistry& registry, const std::vector<std::string>& overrides,
                        const std::string& store_override) {
  try {
    return parse_checked(yaml_text, file, registry, overrides, store_override);
  } catch (const YAML::Exception& e) {
    // Shapes the reader did not anticipate (a map where a list belongs, ...).
    throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1),
                "unexpected YAML structure: " + e.msg, "see docs/yaml.md");
  }
}

namespace {
PipelineSpec parse_checked(const std::string& yaml_text, const fs::path& file,
                           const StageRegistry& registry, const std::vector<std::string>& overrides,
                           const std::string& store_override) {
  SpecReader r(file, registry);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(file.string() + ":" + std::to_string(e.mark.line + 1) + ":" +
                    std::to_string(e.mark.column + 1),
                "invalid YAML: " + e.msg);
  }
  if (!root.IsMap()) throw Error(file.string(), "a pipeline file must be a YAML mapping",
                                 "start with `pipeline: NAME` and `stages:`");
  for (const auto& kv : root)
    if (!kTopKeys.count(kv.first.Scalar()))
      r.fail(kv.first, "unknown top-level key '" + kv.first.Scalar() + "'",
             "valid keys: pipeline, store, vars, stages, description");

  PipelineSpec spec;
  spec.file = fs::absolute(file).lexically_normal();
  spec.base_dir = spec.file.parent_path();
  r.read_vars(root["vars"]);
  if (!root["pipeline"]) throw Error(file.string(), "missing `pipeline:` name");
  spec.name = r.substitute(r.scalar(root["pipeline"], "`pipeline:`"), root["pipeline"], {});
  std::string store_text = store_override;
  if (store_text.empty()) {
    if (root["store"]) store_text = r.substitute(r.scalar(root["store"], "`store:`"), root["store"], {});
    else store_text = ".lvmflow";
    fs::path p(store_text);
    spec.store = (p.is_relative() ? spec.base_dir / p : p).lexically_normal();
  } else {
    spec.store = fs::absolute(store_text).lexically_normal();
  }

  YAML::Node stages = root["stages"];
  if (!stages || !stages.IsSequence() || stages.size() == 0)
    throw Error(file.string(), "`stages:` must be a non-empty list", "see docs/yaml.md");

  // Expand stages (foreach), substitute variables, read raw params.
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::pair<StageSpec, std::vector<YAML::Node>>> expanded;  // input nodes for errors
  std::map<std::string, std::string> first_where;
  for (const auto& node : stages) {
    if (!node.IsMap()) r.fail(node, "each stage must be a mapping with name and type");
    for (const auto& kv : node)
      if (!kStageKeys.count(kv.first.Scalar()))
        r.fail(kv.first, "unknown stage key '" + kv.first.Scalar() + "'",
               "valid keys: name, type, params, inputs, concurrency, batch_size, cache, foreach");
    if (!node["name"]) r.fail(node, "stage without `name:`");
    if (!node["type"]) r.fail(node, "stage '" + node["name"].Scalar() + "' has no `type:`");

    // foreach: {var: [v1, v2]} -> one stage per value, named NAME.v1, NAME.v2 ...
    std::vector<std::map<std::string, std::string>> loops = {{}};
    YAML::Node foreach = node["foreach"];
    if (foreach) {
      if (!foreach.IsMap() || foreach.size() == 0)
        r.fail(foreach, "`foreach:` must map a variable to a list of values", "e.g. foreach: {arch: [lstm, gru]}");
      for (const auto& kv : foreach) {
        if (!kv.second.IsSequence() || kv.second.size() == 0)
          r.fail(kv.second, "foreach variable '" + kv.first.Scalar() + "' needs a non-empty list");
        std::vector<std::map<std::string, std::string>> next;
        for (const auto& loop : loops)
          for (const auto& v : kv.second) {
            auto l = loop;
            l[kv.first.Scalar()] = r.substitute(r.scalar(v, "foreach value"), v, {});
            next.push_back(l);
          }
        loops = next;
      }
    }
    std::string base_name = r.substitute(r.scalar(node["name"], "`name:`"), node["name"], {});
    for (const auto& loop : loops) {
      StageSpec s;
      s.where = r.at(node);
      s.name = base_name;
      if (foreach) {
        s.group = base_name;
        for (const auto& kv : foreach) s.name += "." + loop.at(kv.first.Scalar());
        groups[base_name].push_back(s.name);
      }
      if (!valid_stage_name(s.name))
        r.fail(node["name"], "invalid stage name '" + s.name + "'", "use letters, digits, _ . -");
      s.type = r.substitute(r.scalar(node["type"], "`type:`"), node["type"], loop);
      if (YAML::Node params = node["params"]) {
        if (!params.IsMap()) r.fail(params, "`params:` must be a mapping");
        for (const auto& kv : params) {
          RawParam raw;
          raw.where = r.at(kv.first);
          if (kv.second.IsSequence()) {
            raw.is_list = true;
            for (const auto& item : kv.second)
              raw.items.push_back(r.substitute(r.scalar(item, "list item"), item, loop));
          } else if (kv.second.IsMap()) {
            r.fail(kv.second, "param '" + kv.first.Scalar() + "' must be a value or a list, not a mapping");
          } else {
            raw.text = kv.second.IsNull() ? "" : r.substitute(kv.second.Scalar(), kv.second, loop);
          }
          s.raw_params[kv.first.Scalar()] = raw;
        }
      }
      std::vector<YAML::Node> input_nodes;
      if (YAML::Node inputs = node["inputs"]) {
        if (inputs.IsScalar()) inputs = YAML::Node(std::vector<YAML::Node>{inputs});
        if (!inputs.IsSequence()) r.fail(inputs, "`inputs:` must be a list of stage names");
        for (const auto& in : inputs) {
          s.inputs.push_back(r.substitute(r.scalar(in, "input"), in, loop));
          input_nodes.push_back(in);
        }
      }
      if (node["concurrency"]) s.concurrency = parse_positive(r, node["concurrency"], "`concurrency:`", loop);
      if (node["batch_size"]) s.batch_size = static_cast<std::size_t>(parse_positive(r, node["batch_size"], "`batch_size:`", loop));
      if (node["cache"]) {
        std::string why;
        auto v = parse_param_value(ParamType::Bool, r.scalar(node["cache"], "`cache:`"), &why);
        if (!v) r.fail(node["cache"], "`cache:` " + why);
        s.cache = v->canonical == "true";
      }
      if (first_where.count(s.name))
        r.fail(node["name"], "duplicate stage name '" + s.name + "'",
               "first defined at " + first_where[s.name] + "; stage names must be unique");
      first_where[s.name] = s.where;
      expanded.emplace_back(std::move(s), std::move(input_nodes));
    }
  }
  for (const auto& [g, members] : groups)
    if (first_where.count(g))
      throw Error(first_where[g], "stage name '" + g + "' is also the name of a foreach group",
                  "rename one of them");

  // Apply --set overrides before params are checked, so they are checked the same way.
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    auto dot = o.rfind('.', eq);
    if (eq == std::string::npos || dot == std::string::npos || dot == 0)
      throw Error("--set " + o, "expected STAGE.PARAM=VALUE");
    std::string target = o.substr(0, dot), param = o.substr(dot + 1, eq - dot - 1);
    std::string value = o.substr(eq + 1);
    bool applied = false;
    for (auto& [s, nodes] : expanded) {
      if (s.name != target && s.group != target) continue;
      RawParam raw;
      raw.where = "--set " + o;
      bool list = value.size() >= 2 && value.front() == '[' && value.back() == ']';
      raw.is_list = false;
      raw.text = value;
      (void)list;  // list text is split by the param type when checked
      s.raw_params[param] = raw;
      applied = true;
    }
    if (!applied) {
      std::string names;
      for (const auto& [s, nodes] : expanded) names += (names.empty() ? "" : ", ") + s.name;
      throw Error("--set " + o, "no stage named '" + target + "'", "stages: " + names);
    }
  }

  // Types and params.
  std::vector<std::string> type_names;
  for (const auto* info : registry.all()) type_names.push_back(info->type);
  for (auto& [s, nodes] : expanded) {
    s.info = registry.find(s.type);
    if (!s.info) {
      std::string guess = closest(s.type, type_names);
      throw Error(s.where, "stage '" + s.name + "': unknown stage type '" + s.type + "'",
                  guess.empty() ? "run `lvmflow stages` for the list" : "did you mean '" + guess + "'? (`lvmflow stages` lists all)");
    }
    try {
      s.params = check_params(*s.info, s.raw_params, spec.base_dir.string(), s.where);
    } catch (const Error& e) {
      throw Error(e.where(), "stage '" + s.name + "': " + e.problem(), e.fix());
    }
  }

  // Inputs: names exist (groups expand), counts fit the type.
  for (auto& [s, nodes] : expanded) {
    std::vector<std::string> resolved;
    for (std::size_t i = 0; i < s.inputs.size(); ++i) {
      const std::string& in = s.inputs[i];
      if (auto g = groups.find(in); g != groups.end()) {
        resolved.insert(resolved.end(), g->second.begin(), g->second.end());
      } else if (first_where.count(in)) {
        resolved.push_back(in);
      } else {
        std::vector<std::string> names;
        for (const auto& [n, w] : first_where) names.push_back(n);
        std::string guess = closest(in, names);
        r.fail(nodes[i], "stage '" + s.name + "': input '" + in + "' is not a stage of this pipeline",
               guess.empty() ? "inputs name earlier stages" : "did you mean '" + guess + "'?");
      }
      if (resolved.back() == s.name) r.fail(nodes[i], "stage '" + s.name + "' lists itself as an input");
    }
    s.inputs = resolved;
    const StageInfo& info = *s.info;
    if (s.inputs.size() < info.min_inputs || s.inputs.size() > info.max_inputs) {
      std::string expect = info.min_inputs == info.max_inputs
                               ? std::to_string(info.min_inputs)
                               : info.max_inputs == SIZE_MAX
                                     ? "at least " + std::to_string(info.min_inputs)
                                     : std::to_string(info.min_inputs) + " to " + std::to_string(info.max_inputs);
      throw Error(s.where, "stage '" + s.name + "' (" + s.type + ") takes " + expect +
                               " input(s), got " + std::to_string(s.inputs.size()),
                  "see `lvmflow stages` for what it reads");
    }
  }

  // Cycles: depth-first search reporting the loop.
  std::map<std::string, const StageSpec*> by_name;
  for (const auto& [s, nodes] : expanded) by_name[s.name] = &s;
  std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::function<void(const StageSpec&)> visit = [&](const StageSpec& s) {
    state[s.name] = 1;
    stack.push_back(s.name);
    for (const auto& in : s.inputs) {
      if (state[in] == 1) {
        std::string loop;
        auto it = std::find(stack.begin(), stack.end(), in);
        for (; it != stack.end(); ++it) loop += *it + " -> ";
        throw Error(s.where, "stages form a cycle: " + loop + in, "a stage cannot depend on its own output");
      }
      if (state[in] == 0) visit(*by_name[in]);
    }
    stack.pop_back();
    state[s.name] = 2;
  };
  for (const auto& [s, nodes] : expanded)
    if (state[s.name] == 0) visit(s);

  for (auto& [s, nodes] : expanded) spec.stages.push_back(std::move(s));
  return spec;
}
}  // namespace

}  // namespace lvmflow

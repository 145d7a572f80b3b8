#pragma once
// YAML pipeline spec -> PipelineSpec. Variables (${env:NAME}, ${name} from `vars:`), `foreach:`
// expansion and `--set stage.param=value` overrides are resolved here and nowhere else; then
// everything is validated (types, params, inputs, cycles, names) before anything runs. Every
// error names file:line:col. Format reference: docs/yaml.md.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "pipeline/params.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {

struct StageSpec {
  std::string name;
  std::string type;
  std::string group;             // the `name:` a foreach stage was expanded from ("" otherwise)
  Params params;
  std::map<std::string, RawParam> raw_params;
  std::vector<std::string> inputs;   // stage names, after group expansion
  int concurrency = 1;
  std::size_t batch_size = 0;        // 0: the stage type's natural batching
  bool cache = true;
  std::string where;                 // file:line:col of the stage entry
  const StageInfo* info = nullptr;
};

struct PipelineSpec {
  std::string name;
  std::filesystem::path file;
  std::filesystem::path base_dir;    // relative paths in the spec resolve against this
  std::filesystem::path store;
  std::vector<StageSpec> stages;     // in file order

  const StageSpec* find(const std::string& name) const;
};

// `overrides` are "stage.param=value" strings (a foreach group name applies to all its
// stages); `store_override` replaces `store:` when not empty.
PipelineSpec load_spec(const std::filesystem::path& file, const StageRegistry& registry,
                       const std::vector<std::string>& overrides = {},
                       const std::string& store_override = {});
PipelineSpec parse_spec(const std::string& yaml_text, const std::filesystem::path& file,
                        const StageRegistry& registry,
                        const std::vector<std::string>& overrides = {},
                        const std::string& store_override = {});

}  // namespace lvmflow

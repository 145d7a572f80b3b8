#include "pipeline/stage.hpp"

#include "pipeline/error.hpp"

namespace lvmflow {

const char* to_string(StageKind k) {
  switch (k) {
    case StageKind::Source: return "source";
    case StageKind::Map: return "map";
    case StageKind::Barrier: return "barrier";
  }
  return "?";
}

std::filesystem::path StageContext::resume_dir(const std::string&) {
  throw Error("stage '" + stage_name() + "'", "this context keeps no resume state", "set the stage's `resume: false`");
}

void StageRegistry::add(StageInfo info) {
  if (infos_.count(info.type)) throw Error("stage registry", "stage type '" + info.type + "' registered twice");
  if (!info.make) throw Error("stage registry", "stage type '" + info.type + "' has no factory");
  std::string type = info.type;
  infos_.emplace(type, std::move(info));
}

const StageInfo* StageRegistry::find(const std::string& type) const {
  auto it = infos_.find(type);
  return it == infos_.end() ? nullptr : &it->second;
}

std::vector<const StageInfo*> StageRegistry::all() const {
  std::vector<const StageInfo*> out;
  for (const auto& [type, info] : infos_) out.push_back(&info);
  return out;
}

}  // namespace lvmflow

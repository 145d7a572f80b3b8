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

const std::string& StageContext::artifact_key() const {
  static const std::string none;
  return none;
}

std::filesystem::path StageContext::committed_artifact(const std::string&) const { return {}; }

void StageInput::for_each_batch(const std::function<void(const Batch&)>& fn, bool with_vectors) const {
  if (!streamed) {
    for (const Batch& b : batches) fn(b);
    return;
  }
  ArtifactReader reader(dir, with_vectors);
  Batch b;
  while (reader.next(b)) fn(b);
}

void StageRegistry::add(StageInfo info) {
  if (family_.empty())
    throw Error("stage registry", "stage type '" + info.type + "' is registered outside a stage family",
                "register it from its family's register_<family>_stages() or pass the family to add()");
  add(std::move(info), family_);
}

void StageRegistry::add(StageInfo info, const std::string& family) {
  if (!info.type.starts_with(family + ".") || info.type.size() == family.size() + 1)
    throw Error("stage registry", "stage type '" + info.type + "' is registered by family '" + family +
                                      "' (stages/" + family + "/)",
                "name it '" + family + ".<name>' or move it to the folder its prefix names: a stage type's "
                "prefix is its folder");
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

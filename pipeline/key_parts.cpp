#include "pipeline/key_parts.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

#include "pipeline/error.hpp"

namespace lvmflow {

void write_key_parts(const std::filesystem::path& file, const PlannedStage& stage) {
  nlohmann::json parts = nlohmann::json::array();
  for (const auto& p : stage.key_parts) parts.push_back({{"kind", p.kind}, {"name", p.name}, {"value", p.value}});
  const nlohmann::json doc = {{"stage", stage.spec->name}, {"key", stage.key}, {"parts", parts}};
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  if (!out) throw Error(file.string(), "cannot write the cache key's parts", "check free disk space");
}

std::optional<std::vector<KeyPart>> read_key_parts(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  try {
    const nlohmann::json doc = nlohmann::json::parse(in);
    std::vector<KeyPart> parts;
    for (const auto& p : doc.at("parts"))
      parts.push_back({p.at("kind").get<std::string>(), p.at("name").get<std::string>(), p.at("value").get<std::string>()});
    return parts;
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string(), std::string("damaged key record: ") + e.what(),
                "the artifact was edited by hand; `lvmflow why` can still show the current key's parts");
  }
}

}  // namespace lvmflow

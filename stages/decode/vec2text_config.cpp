#include "stages/decode/vec2text_config.hpp"

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"

namespace lvmflow {

namespace fs = std::filesystem;

Vec2TextConfig read_vec2text_config(const fs::path& folder) {
  const fs::path path = folder / "config.json";
  if (!fs::is_regular_file(path))
    throw Error(path.string(), "missing config.json of the vec2text checkpoint",
                "copy the whole published folder (e.g. jxm/gtr__nq__32: config.json + weights)");
  const std::string where = path.string();
  const Json json = read_json_file(where);
  Vec2TextConfig c;
  if (const Json* v = json.find("model_name_or_path"); v && v->is_string()) c.base_model = v->as_string();
  if (const Json* v = json.find("max_seq_length"); v && !v->is_null()) c.max_seq_length = v->as_int(where + ": max_seq_length");
  if (const Json* v = json.find("num_repeat_tokens"); v && !v->is_null())
    c.num_repeat_tokens = v->as_int(where + ": num_repeat_tokens");
  if (c.max_seq_length < 2 || c.num_repeat_tokens < 1)
    throw Error(where, "max_seq_length " + std::to_string(c.max_seq_length) + " / num_repeat_tokens " +
                           std::to_string(c.num_repeat_tokens) + " out of range",
                "use the config.json published with the checkpoint");
  return c;
}

}  // namespace lvmflow

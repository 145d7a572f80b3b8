#include "stages/common/t5/t5_config.hpp"

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"

namespace lvmflow {

T5Config read_t5_config(const std::filesystem::path& config_json) {
  const std::string where = config_json.string();
  if (!std::filesystem::exists(config_json))
    throw Error(where, "model folder has no config.json",
                "point `model` at a Hugging Face T5 / sentence-transformers folder such as "
                "sentence-transformers/gtr-t5-base");
  Json j = read_json_file(where);
  auto positive = [&](const char* key, std::int64_t fallback = -1) {
    const Json* v = j.find(key);
    if (!v) {
      if (fallback > 0) return fallback;
      throw Error(where, std::string("missing \"") + key + "\"", "is this a T5 config.json?");
    }
    std::int64_t n = v->as_int(where + ": " + key);
    if (n <= 0) throw Error(where, std::string("\"") + key + "\" must be positive, found " + std::to_string(n));
    return n;
  };
  T5Config c;
  c.vocab_size = positive("vocab_size");
  c.d_model = positive("d_model");
  c.d_kv = positive("d_kv");
  c.num_heads = positive("num_heads");
  c.d_ff = positive("d_ff");
  c.num_layers = positive("num_layers");
  c.num_buckets = positive("relative_attention_num_buckets", 32);
  c.max_distance = positive("relative_attention_max_distance", 128);
  if (c.num_buckets < 4)
    throw Error(where, "\"relative_attention_num_buckets\" must be at least 4");
  if (const Json* eps = j.find("layer_norm_epsilon")) c.layer_norm_eps = eps->as_double(where + ": layer_norm_epsilon");
  c.feed_forward_proj = "relu";
  if (const Json* ff = j.find("feed_forward_proj")) c.feed_forward_proj = ff->as_string(where + ": feed_forward_proj");
  if (c.feed_forward_proj == "relu") {
    c.gated = false;
  } else if (c.feed_forward_proj == "gated-gelu") {
    c.gated = true;
  } else {
    throw Error(where, "feed_forward_proj \"" + c.feed_forward_proj + "\" is not supported",
                "lvmflow's T5 encoder implements \"relu\" (GTR-T5, T5 v1.0) and \"gated-gelu\" (T5 v1.1)");
  }
  return c;
}

}  // namespace lvmflow

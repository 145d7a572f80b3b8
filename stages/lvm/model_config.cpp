#include "stages/lvm/model_config.hpp"

#include <algorithm>

#include "pipeline/error.hpp"

namespace lvmflow {

const std::vector<std::string>& model_architectures() {
  static const std::vector<std::string> archs = {"amn", "lstm", "gru", "transformer"};
  return archs;
}

bool is_model_architecture(const std::string& arch) {
  const auto& a = model_architectures();
  return std::find(a.begin(), a.end(), arch) != a.end();
}

ModelConfig default_model_config(const std::string& arch, std::int64_t input_dim, std::int64_t context,
                                 std::int64_t hidden, std::int64_t layers) {
  ModelConfig c;
  c.arch = arch;
  c.input_dim = input_dim;
  c.context = context;
  if (arch == "lstm") {
    c.hidden = 512, c.layers = 2, c.dropout = 0.2;
  } else if (arch == "gru") {
    c.hidden = 512, c.layers = 4, c.dropout = 0.0;
  } else if (arch == "transformer") {
    c.hidden = 512, c.layers = 4, c.heads = 8, c.ff = 2048, c.dropout = 0.1;
  } else if (arch == "amn") {
    c.hidden = 256, c.layers = 1, c.ff = 512, c.dropout = 0.0;
  } else {
    throw Error("arch", "unknown architecture '" + arch + "'", "use one of amn, lstm, gru, transformer");
  }
  if (hidden > 0) {
    // Keep the transformer's ff = 4 * width and the amn's MLP = 2 * attention width.
    if (arch == "transformer") {
      c.ff = 4 * hidden;
      c.heads = std::min<std::int64_t>(c.heads, hidden);
      while (hidden % c.heads != 0) --c.heads;
    }
    if (arch == "amn") c.ff = 2 * hidden;
    c.hidden = hidden;
  }
  if (layers > 0 && arch != "amn") c.layers = layers;
  return c;
}

Json ModelConfig::to_json() const {
  Json j;
  j["arch"] = arch;
  j["input_dim"] = input_dim;
  j["context"] = context;
  j["hidden"] = hidden;
  j["layers"] = layers;
  j["heads"] = heads;
  j["ff"] = ff;
  j["dropout"] = dropout;
  return j;
}

ModelConfig ModelConfig::from_json(const Json& j, const std::string& where) {
  ModelConfig c;
  c.arch = j.at("arch", where).as_string(where + ": arch");
  if (!is_model_architecture(c.arch))
    throw Error(where, "unknown architecture '" + c.arch + "'", "use one of amn, lstm, gru, transformer");
  c.input_dim = j.at("input_dim", where).as_int(where + ": input_dim");
  c.context = j.at("context", where).as_int(where + ": context");
  c.hidden = j.at("hidden", where).as_int(where + ": hidden");
  c.layers = j.at("layers", where).as_int(where + ": layers");
  c.heads = j.at("heads", where).as_int(where + ": heads");
  c.ff = j.at("ff", where).as_int(where + ": ff");
  c.dropout = j.at("dropout", where).as_double(where + ": dropout");
  if (c.input_dim < 1 || c.hidden < 1 || (c.arch == "transformer" && (c.heads < 1 || c.hidden % c.heads)))
    throw Error(where, "model sizes do not fit together (input_dim " + std::to_string(c.input_dim) +
                           ", hidden " + std::to_string(c.hidden) + ", heads " + std::to_string(c.heads) + ")",
                "re-create the checkpoint with lvm.train");
  return c;
}

}  // namespace lvmflow

#include "stages/encode/text_encoder.hpp"

#include "pipeline/error.hpp"

namespace lvmflow {

const char* to_string(Pooling p) {
  return p == Pooling::SentenceTransformers ? "sentence-transformers" : "vec2text";
}

Pooling parse_pooling(const std::string& text, const std::string& where) {
  if (text == "sentence-transformers") return Pooling::SentenceTransformers;
  if (text == "vec2text") return Pooling::Vec2Text;
  throw Error(where, "unknown pooling '" + text + "'",
              "use 'sentence-transformers' (mean -> Dense -> L2 normalise, GTR-T5's own) or "
              "'vec2text' (mean of the encoder output, for vec2text decoding)");
}

const char* to_string(ComputeDType d) {
  switch (d) {
    case ComputeDType::Float32: return "float32";
    case ComputeDType::BFloat16: return "bfloat16";
    case ComputeDType::Int8Dynamic: return "int8";
  }
  return "?";
}

ComputeDType parse_compute_dtype(const std::string& text, const std::string& where) {
  if (text == "float32") return ComputeDType::Float32;
  if (text == "bfloat16") return ComputeDType::BFloat16;
  if (text == "int8") return ComputeDType::Int8Dynamic;
  throw Error(where, "unknown dtype '" + text + "'", "use 'float32' (default), 'bfloat16' or 'int8'");
}

}  // namespace lvmflow

#include "stages/encode/encoder_record.hpp"

namespace lvmflow {

Json encoder_record(const TextEncoder& encoder, const std::filesystem::path& model_dir, std::size_t rows) {
  Json j;
  j["model_name"] = Json(encoder.name());
  j["model_fingerprint"] = Json(encoder.fingerprint());
  j["model_dir"] = model_dir.empty() ? Json() : Json(model_dir.string());
  j["builtin"] = Json(encoder.is_builtin());
  j["is_gtr_t5"] = Json(!encoder.is_builtin());
  j["pooling"] = encoder.is_builtin() ? Json("builtin-hash (word + word-pair features)") : Json(to_string(encoder.pooling()));
  j["max_length"] = Json(static_cast<std::int64_t>(encoder.max_length()));
  j["dim"] = Json(static_cast<std::uint64_t>(encoder.dim()));
  j["dtype"] = Json("float32");  // of the stored vectors
  j["compute_dtype"] = Json(to_string(encoder.compute_dtype()));  // of the linear layers
  j["rows"] = Json(static_cast<std::uint64_t>(rows));
  return j;
}

}  // namespace lvmflow

#include "stages/encode/text_encoder.hpp"

#include "pipeline/error.hpp"
#include "stages/common/t5/checkpoint_files.hpp"

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

void check_gtr_t5_folder(const std::filesystem::path& folder, const std::string& param) {
  const std::string fix =
      "download sentence-transformers/gtr-t5-base from the Hugging Face hub (`huggingface-cli download "
      "sentence-transformers/gtr-t5-base --local-dir models/gtr-t5-base`) and point " + param + " at that folder";
  if (!std::filesystem::is_directory(folder))
    throw Error(param, param + ": model folder " + folder.string() + " does not exist", fix);
  for (const char* f : {"config.json", "spiece.model"})
    if (!std::filesystem::exists(folder / f))
      throw Error((folder / f).string(), param + ": model folder has no " + (folder / f).string(), fix);
}

std::vector<std::filesystem::path> gtr_t5_model_files(const std::filesystem::path& folder) {
  // This order is part of encode.gtr_t5's cache key: append, never reorder.
  std::vector<std::filesystem::path> files = checkpoint_files(folder);
  for (const char* f : {"modules.json", "sentence_bert_config.json", "1_Pooling/config.json"})
    if (std::filesystem::is_regular_file(folder / f)) files.push_back(folder / f);
  for (const auto& f : checkpoint_files(folder / "2_Dense")) files.push_back(f);
  return files;
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

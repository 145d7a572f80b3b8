#pragma once
// Precision of a T5's linear layers (everything else stays float32): float32 (default, exact),
// bfloat16 weights + activations, or int8 dynamic quantisation (per-channel int8 weights,
// activations quantised per call; oneDNN; q/k/v projections stay bfloat16). Shared by the
// encoder (encode.gtr_t5) and vec2text (decode.vec2text); torch-free header. See
// docs/benchmarks/encode.md for the measured speed and cosine loss of each.
#include <string>

namespace lvmflow {

enum class ComputeDType { Float32, BFloat16, Int8Dynamic };
const char* to_string(ComputeDType d);
// Throws lvmflow::Error naming `where` for anything but "float32", "bfloat16", "int8".
ComputeDType parse_compute_dtype(const std::string& text, const std::string& where);

}  // namespace lvmflow

#pragma once
// y = x W^T + b over raw float rows, with W prepacked once in float32, bfloat16 or int8.
// Torch-free: the LVM fast inference path (fast_inference.cpp) is built on it.
//
// Why its own kernel: at batch 1 an LVM step is a matrix-vector product, and its cost is
// reading W. The packed layout keeps 16 output rows' weights side by side (one 64-byte line
// per input element in float32), so one pass streams W once for up to 4 input rows at a time;
// bfloat16 and int8 halve / quarter the bytes. float32 / bfloat16: activations and sums stay
// float32 (weights are widened in registers), so the only error is the weight rounding.
// int8: activations are quantised per row to 8 bits (torch's dynamic quantisation scheme) and
// the products summed exactly in int32 (AVX-512 VNNI where the CPU has it).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lvmflow {

enum class LvmDType { Float32, BFloat16, Int8 };

const char* to_string(LvmDType dtype);
// "float32" | "bfloat16" | "int8"; throws lvmflow::Error naming `where` otherwise.
LvmDType parse_lvm_dtype(const std::string& text, const std::string& where);

class PackedLinear {
 public:
  PackedLinear() = default;
  // weight: [out, in] row-major float32; bias: `out` values or nullptr (zero).
  PackedLinear(const float* weight, const float* bias, std::size_t out, std::size_t in, LvmDType dtype);

  // y[r] = x[r] W^T + b for r < rows; x rows are `in` floats apart, y rows `out` apart.
  // accumulate: add to y instead of overwriting it.
  void apply(const float* x, std::size_t rows, float* y, bool accumulate = false) const;
  // The same with explicit row strides (rows of a [batch, steps, width] sequence, one step).
  void apply(const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
             bool accumulate = false) const;

  std::size_t in() const { return in_; }
  std::size_t out() const { return out_; }
  LvmDType dtype() const { return dtype_; }
  std::size_t weight_bytes() const;

 private:
  std::size_t in_ = 0, out_ = 0, blocks_ = 0;   // blocks_: ceil(out / 16)
  LvmDType dtype_ = LvmDType::Float32;
  // float32 / bfloat16 panel b holds W[16b .. 16b+15][k] for k = 0..in-1, 16 values per k
  // (rows past `out` zero); int8 panels: see apply_int8.
  std::vector<float> f32_;
  std::vector<std::uint16_t> bf16_;
  std::vector<std::int8_t> i8_;
  std::vector<float> scale_;   // int8: per output row, W[o][k] ~ i8 * scale[o]
  std::vector<std::int32_t> row_sum_;   // int8: sum_k i8[o][k]

  void apply_int8(const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
                  bool accumulate) const;
  std::vector<float> bias_;    // padded to 16 * blocks_
};

}  // namespace lvmflow

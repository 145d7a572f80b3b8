#include "stages/lvm/packed_linear.hpp"

// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_* helpers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "pipeline/error.hpp"

namespace lvmflow {

const char* to_string(LvmDType dtype) {
  switch (dtype) {
    case LvmDType::Float32: return "float32";
    case LvmDType::BFloat16: return "bfloat16";
    case LvmDType::Int8: return "int8";
  }
  return "?";
}

LvmDType parse_lvm_dtype(const std::string& text, const std::string& where) {
  if (text == "float32") return LvmDType::Float32;
  if (text == "bfloat16") return LvmDType::BFloat16;
  if (text == "int8") return LvmDType::Int8;
  throw Error(where, "unknown dtype '" + text + "'", "use float32, bfloat16 or int8");
}

namespace {

constexpr std::size_t kLanes = 16;   // outputs per panel: one AVX-512 register of floats
constexpr int kRowsPerPass = 4;      // input rows sharing one pass over a panel

// Round to nearest even, as torch's float -> bfloat16 conversion does.
std::uint16_t to_bfloat16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<std::uint16_t>(u >> 16);
}

float widen(float w) { return w; }
float widen(std::uint16_t w) {
  const std::uint32_t u = std::uint32_t(w) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// One panel (16 outputs) times `rows` input rows, any CPU. acc[r][j] = sum_k W[j][k] x[r][k].
template <class W>
void panel_portable(const W* panel, std::size_t in, const float* x, std::size_t x_stride, int rows,
                    float acc[kRowsPerPass][kLanes]) {
  for (int r = 0; r < rows; ++r) {
    float sum[kLanes] = {};
    const float* xr = x + r * x_stride;
    for (std::size_t k = 0; k < in; ++k)
      for (std::size_t j = 0; j < kLanes; ++j) sum[j] += widen(panel[k * kLanes + j]) * xr[k];
    std::memcpy(acc[r], sum, sizeof sum);
  }
}

#define LVMFLOW_AVX512 __attribute__((target("avx512f")))

LVMFLOW_AVX512 inline __m512 load_panel(const float* p) { return _mm512_loadu_ps(p); }
LVMFLOW_AVX512 inline __m512 load_panel(const std::uint16_t* p) {
  const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

// The AVX-512 panel kernel: each weight vector is widened once and used for R rows; four
// partial sums per row hide the FMA latency of a single dependency chain (batch 1).
template <int R, class W>
LVMFLOW_AVX512 void panel_avx512_rows(const W* panel, std::size_t in, const float* x, std::size_t x_stride,
                                      float acc[kRowsPerPass][kLanes]) {
  __m512 sum[R][4];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < 4; ++u) sum[r][u] = _mm512_setzero_ps();
  std::size_t k = 0;
  for (; k + 4 <= in; k += 4) {
    for (int u = 0; u < 4; ++u) {
      const __m512 w = load_panel(panel + (k + u) * kLanes);
      for (int r = 0; r < R; ++r) sum[r][u] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[r * x_stride + k + u]), sum[r][u]);
    }
  }
  for (; k < in; ++k) {
    const __m512 w = load_panel(panel + k * kLanes);
    for (int r = 0; r < R; ++r) sum[r][0] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[r * x_stride + k]), sum[r][0]);
  }
  for (int r = 0; r < R; ++r)
    _mm512_storeu_ps(acc[r], _mm512_add_ps(_mm512_add_ps(sum[r][0], sum[r][1]), _mm512_add_ps(sum[r][2], sum[r][3])));
}

template <class W>
void panel_avx512(const W* panel, std::size_t in, const float* x, std::size_t x_stride, int rows,
                  float acc[kRowsPerPass][kLanes]) {
  switch (rows) {
    case 1: panel_avx512_rows<1>(panel, in, x, x_stride, acc); break;
    case 2: panel_avx512_rows<2>(panel, in, x, x_stride, acc); break;
    case 3: panel_avx512_rows<3>(panel, in, x, x_stride, acc); break;
    default: panel_avx512_rows<4>(panel, in, x, x_stride, acc); break;
  }
}

// LVMFLOW_PORTABLE_KERNELS=1 forces the portable loops (to test them on an AVX-512 machine).
bool portable_forced() {
  static const bool forced = std::getenv("LVMFLOW_PORTABLE_KERNELS") != nullptr;
  return forced;
}
bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && !portable_forced();
  return has;
}
bool cpu_has_avx512_vnni() {
  static const bool has = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return has;
}

// y = x W^T + bias, panel by panel: a panel (16 x in weights, at most 128 KB) stays
// in cache while every input row passes over it, so W is read from memory once per call.
template <class W>
void apply_panels(const W* panels, std::size_t blocks, std::size_t in, std::size_t out, const float* bias,
                  const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
                  bool accumulate) {
  const bool avx512 = cpu_has_avx512();
  float acc[kRowsPerPass][kLanes];
  for (std::size_t b = 0; b < blocks; ++b) {
    const W* panel = panels + b * in * kLanes;
    const std::size_t first = b * kLanes, width = std::min(kLanes, out - first);
    for (std::size_t r0 = 0; r0 < rows; r0 += kRowsPerPass) {
      const int n = int(std::min<std::size_t>(kRowsPerPass, rows - r0));
      if (avx512) panel_avx512(panel, in, x + r0 * x_stride, x_stride, n, acc);
      else panel_portable(panel, in, x + r0 * x_stride, x_stride, n, acc);
      for (int r = 0; r < n; ++r) {
        float* yr = y + (r0 + r) * y_stride + first;
        for (std::size_t j = 0; j < width; ++j) {
          float v = acc[r][j] + bias[first + j];
          yr[j] = accumulate ? yr[j] + v : v;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// int8: weights symmetric per output row, activations quantised per input row to uint8 with
// zero point 128 (as torch's dynamic quantisation does), products summed exactly in int32:
// 64 multiply-adds per AVX-512 VNNI instruction instead of 16 float FMAs.
// Panel b: for each group g of 4 inputs, 64 bytes = 16 outputs x W[o][4g .. 4g+3].

// One panel times `rows` quantised rows (each `groups` x 4 bytes): acc[r][j] = sum xq * w.
void int8_panel_portable(const std::int8_t* panel, std::size_t groups, const std::uint8_t* xq, int rows,
                         std::int32_t acc[kRowsPerPass][kLanes]) {
  for (int r = 0; r < rows; ++r) {
    const std::uint8_t* xr = xq + r * groups * 4;
    for (std::size_t j = 0; j < kLanes; ++j) {
      std::int32_t sum = 0;
      for (std::size_t g = 0; g < groups; ++g)
        for (std::size_t i = 0; i < 4; ++i) sum += std::int32_t(xr[g * 4 + i]) * panel[g * 64 + j * 4 + i];
      acc[r][j] = sum;
    }
  }
}

// The 4 bytes of group g of quantised row r, in every 32-bit lane.
__attribute__((target("avx512f"))) inline __m512i quad(const std::uint8_t* xq, std::size_t groups, int r, std::size_t g) {
  std::int32_t v;
  std::memcpy(&v, xq + (r * groups + g) * 4, 4);
  return _mm512_set1_epi32(v);
}

template <int R>
__attribute__((target("avx512f,avx512vnni"))) void int8_panel_vnni_rows(const std::int8_t* panel, std::size_t groups,
                                                                          const std::uint8_t* xq,
                                                                          std::int32_t acc[kRowsPerPass][kLanes]) {
  __m512i sum[R][4];
  for (int r = 0; r < R; ++r)
    for (int u = 0; u < 4; ++u) sum[r][u] = _mm512_setzero_si512();
  std::size_t g = 0;
  for (; g + 4 <= groups; g += 4)
    for (int u = 0; u < 4; ++u) {
      const __m512i w = _mm512_loadu_si512(panel + (g + u) * 64);
      for (int r = 0; r < R; ++r) sum[r][u] = _mm512_dpbusd_epi32(sum[r][u], quad(xq, groups, r, g + u), w);
    }
  for (; g < groups; ++g) {
    const __m512i w = _mm512_loadu_si512(panel + g * 64);
    for (int r = 0; r < R; ++r) sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], quad(xq, groups, r, g), w);
  }
  for (int r = 0; r < R; ++r)
    _mm512_storeu_si512(acc[r], _mm512_add_epi32(_mm512_add_epi32(sum[r][0], sum[r][1]),
                                                 _mm512_add_epi32(sum[r][2], sum[r][3])));
}

void int8_panel_vnni(const std::int8_t* panel, std::size_t groups, const std::uint8_t* xq, int rows,
                     std::int32_t acc[kRowsPerPass][kLanes]) {
  switch (rows) {
    case 1: int8_panel_vnni_rows<1>(panel, groups, xq, acc); break;
    case 2: int8_panel_vnni_rows<2>(panel, groups, xq, acc); break;
    case 3: int8_panel_vnni_rows<3>(panel, groups, xq, acc); break;
    default: int8_panel_vnni_rows<4>(panel, groups, xq, acc); break;
  }
}

// x row -> uint8 (round(x / s) + 128, padded with 128 = zero), returns s = max|x| / 127.
float quantize_row(const float* x, std::size_t in, std::size_t groups, std::uint8_t* xq) {
  float max_abs = 0;
  for (std::size_t k = 0; k < in; ++k) max_abs = std::max(max_abs, std::abs(x[k]));
  const float scale = max_abs > 0 ? max_abs / 127.0f : 1.0f, inv = 1.0f / scale;
  for (std::size_t k = 0; k < in; ++k) xq[k] = static_cast<std::uint8_t>(std::nearbyint(x[k] * inv) + 128.0f);
  std::fill(xq + in, xq + groups * 4, std::uint8_t(128));
  return scale;
}

}  // namespace

PackedLinear::PackedLinear(const float* weight, const float* bias, std::size_t out, std::size_t in, LvmDType dtype)
    : in_(in), out_(out), blocks_((out + kLanes - 1) / kLanes), dtype_(dtype) {
  const std::size_t padded = blocks_ * kLanes;
  bias_.assign(padded, 0.0f);
  if (bias) std::copy(bias, bias + out, bias_.begin());
  // Packed position of W[o][k]: panel o / 16, then k, then lane o % 16.
  auto at = [&](std::size_t o, std::size_t k) { return (o / kLanes) * in * kLanes + k * kLanes + o % kLanes; };
  switch (dtype) {
    case LvmDType::Float32:
      f32_.assign(padded * in, 0.0f);
      for (std::size_t o = 0; o < out; ++o)
        for (std::size_t k = 0; k < in; ++k) f32_[at(o, k)] = weight[o * in + k];
      break;
    case LvmDType::BFloat16:
      bf16_.assign(padded * in, 0);
      for (std::size_t o = 0; o < out; ++o)
        for (std::size_t k = 0; k < in; ++k) bf16_[at(o, k)] = to_bfloat16(weight[o * in + k]);
      break;
    case LvmDType::Int8: {
      // Symmetric per-output-row scales: the largest |W[o][k]| maps to 127.
      const std::size_t groups = (in + 3) / 4;
      i8_.assign(padded * groups * 4, 0);
      scale_.assign(padded, 1.0f);
      row_sum_.assign(padded, 0);
      for (std::size_t o = 0; o < out; ++o) {
        float max_abs = 0;
        for (std::size_t k = 0; k < in; ++k) max_abs = std::max(max_abs, std::abs(weight[o * in + k]));
        if (max_abs > 0) scale_[o] = max_abs / 127.0f;
        for (std::size_t k = 0; k < in; ++k) {
          const auto q = static_cast<std::int8_t>(std::clamp(std::nearbyint(weight[o * in + k] / scale_[o]), -127.0f, 127.0f));
          i8_[(o / kLanes) * groups * 64 + (k / 4) * 64 + (o % kLanes) * 4 + k % 4] = q;
          row_sum_[o] += q;
        }
      }
      break;
    }
  }
}

std::size_t PackedLinear::weight_bytes() const {
  return f32_.size() * sizeof(float) + bf16_.size() * sizeof(std::uint16_t) + i8_.size();
}

void PackedLinear::apply(const float* x, std::size_t rows, float* y, bool accumulate) const {
  apply(x, in_, rows, y, out_, accumulate);
}

void PackedLinear::apply(const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
                         bool accumulate) const {
  switch (dtype_) {
    case LvmDType::Float32:
      apply_panels(f32_.data(), blocks_, in_, out_, bias_.data(), x, x_stride, rows, y, y_stride, accumulate);
      break;
    case LvmDType::BFloat16:
      apply_panels(bf16_.data(), blocks_, in_, out_, bias_.data(), x, x_stride, rows, y, y_stride, accumulate);
      break;
    case LvmDType::Int8: apply_int8(x, x_stride, rows, y, y_stride, accumulate); break;
  }
}

void PackedLinear::apply_int8(const float* x, std::size_t x_stride, std::size_t rows, float* y, std::size_t y_stride,
                              bool accumulate) const {
  const std::size_t groups = (in_ + 3) / 4;
  std::vector<std::uint8_t> xq(rows * groups * 4);
  std::vector<float> x_scale(rows);
  for (std::size_t r = 0; r < rows; ++r) x_scale[r] = quantize_row(x + r * x_stride, in_, groups, xq.data() + r * groups * 4);
  const bool vnni = cpu_has_avx512_vnni();
  std::int32_t acc[kRowsPerPass][kLanes];
  for (std::size_t b = 0; b < blocks_; ++b) {
    const std::int8_t* panel = i8_.data() + b * groups * 64;
    const std::size_t first = b * kLanes, width = std::min(kLanes, out_ - first);
    for (std::size_t r0 = 0; r0 < rows; r0 += kRowsPerPass) {
      const int n = int(std::min<std::size_t>(kRowsPerPass, rows - r0));
      const std::uint8_t* rows_q = xq.data() + r0 * groups * 4;
      if (vnni) int8_panel_vnni(panel, groups, rows_q, n, acc);
      else int8_panel_portable(panel, groups, rows_q, n, acc);
      for (int r = 0; r < n; ++r) {
        float* yr = y + (r0 + r) * y_stride + first;
        for (std::size_t j = 0; j < width; ++j) {
          // sum (xq - 128) w = sum xq w - 128 sum w
          const std::int32_t dot = acc[r][j] - 128 * row_sum_[first + j];
          const float v = float(dot) * x_scale[r0 + r] * scale_[first + j] + bias_[first + j];
          yr[j] = accumulate ? yr[j] + v : v;
        }
      }
    }
  }
}

}  // namespace lvmflow

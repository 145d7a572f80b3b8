#include "tests/stages/encode/tiny_models.hpp"

#include <cmath>
#include <fstream>

#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {

fs::path generate_or_reuse() {
  return cached_fixture("lvmflow-tiny-t5", "make_tiny_t5.py",
                        {"make_tiny_t5.py", "t5_reference.py", "safetensors_io.py"}, "texts.txt");
}

}  // namespace

const fs::path& tiny_models() {
  static const fs::path dir = generate_or_reuse();
  return dir;
}

std::vector<std::string> read_lines(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

fs::path copy_model(const fs::path& from, const std::string& prefix) {
  fs::path to = make_temp_dir(prefix);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  return to;
}

double cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(aa * bb);
}

}  // namespace lvmflow::testing

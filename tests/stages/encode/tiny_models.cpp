#include "tests/stages/encode/tiny_models.hpp"

#include <cmath>
#include <fstream>

#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {
// Removes the generated folder when the test program exits.
struct GeneratedModels {
  fs::path dir;
  GeneratedModels() {
    if (!python_has("torch numpy sentencepiece")) return;
    dir = make_temp_dir("lvmflow-tiny-t5");
    if (run_fixture_script("make_tiny_t5.py", dir.string()) != 0) {
      ADD_FAILURE() << "tools/fixtures/make_tiny_t5.py failed";
      dir.clear();
    }
  }
  ~GeneratedModels() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};
}  // namespace

const fs::path& tiny_models() {
  static const GeneratedModels models;
  return models.dir;
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

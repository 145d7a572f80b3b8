#include "tests/stages/encode/tiny_models.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "pipeline/hash.hpp"
#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {

// ctest runs every test case in its own process, so the models are generated once into a
// shared cache folder named after the generator scripts' content (a changed script makes a
// new folder) and reused by later processes. A file lock keeps parallel ctest runs from
// generating twice; the folder appears by rename only when complete.
fs::path generate_or_reuse() {
  Sha256 h;
  for (const char* script : {"make_tiny_t5.py", "t5_reference.py", "safetensors_io.py"})
    h.field(sha256_file(fixture_script(script)));
  const fs::path dir = fs::temp_directory_path() / ("lvmflow-tiny-t5-" + h.hex().substr(0, 16));
  if (fs::exists(dir / "texts.txt")) return dir;
  // Importing torch costs seconds: only check for it when the models must be generated.
  if (!python_has("torch numpy sentencepiece")) return {};
  const fs::path lock_path = dir.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd >= 0) ::flock(fd, LOCK_EX);
  if (!fs::exists(dir / "texts.txt")) {
    const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    if (run_fixture_script("make_tiny_t5.py", tmp.string()) != 0) {
      ADD_FAILURE() << "tools/fixtures/make_tiny_t5.py failed";
      fs::remove_all(tmp);
    } else {
      fs::remove_all(dir);
      fs::rename(tmp, dir);
    }
  }
  if (fd >= 0) ::close(fd);  // releases the lock
  return fs::exists(dir / "texts.txt") ? dir : fs::path();
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

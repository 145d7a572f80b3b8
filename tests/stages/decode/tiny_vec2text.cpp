#include "tests/stages/decode/tiny_vec2text.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "pipeline/hash.hpp"

#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {

// ctest runs every test case in its own process, so the fixtures are generated once into a
// shared folder named after the generator scripts' content (a changed script makes a new
// folder) and reused by later processes; a file lock keeps parallel runs from generating
// twice, and the folder appears by rename only when complete. (The same scheme as
// tests/stages/encode/tiny_models.cpp; a shared helper in tests/stages/common would serve both.)
fs::path generate_or_reuse() {
  const char* marker = "ref.json";
  Sha256 h;
  for (const char* script : {"make_tiny_vec2text.py", "vec2text_reference.py", "make_tiny_t5.py", "t5_reference.py",
                             "safetensors_io.py"})
    h.field(sha256_file(fixture_script(script)));
  const fs::path dir = fs::temp_directory_path() / ("lvmflow-tiny-vec2text-" + h.hex().substr(0, 16));
  if (fs::exists(dir / marker)) return dir;
  if (!python_has("torch numpy sentencepiece")) return {};   // importing torch costs seconds: only here
  const fs::path lock_path = dir.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd >= 0) ::flock(fd, LOCK_EX);
  if (!fs::exists(dir / marker)) {
    const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    if (run_fixture_script("make_tiny_vec2text.py", tmp.string()) != 0) {
      ADD_FAILURE() << "tools/fixtures/make_tiny_vec2text.py failed";
      fs::remove_all(tmp);
    } else {
      fs::remove_all(dir);
      fs::rename(tmp, dir);
    }
  }
  if (fd >= 0) ::close(fd);   // releases the lock
  return fs::exists(dir / marker) ? dir : fs::path();
}

}  // namespace

const fs::path& tiny_vec2text() {
  static const fs::path dir = generate_or_reuse();
  return dir;
}

const Json& vec2text_reference() {
  static const Json ref = read_json_file((tiny_vec2text() / "ref.json").string());
  return ref;
}

std::vector<std::int64_t> int_list(const Json& array) {
  std::vector<std::int64_t> out;
  for (const Json& v : array.as_array()) out.push_back(v.as_int());
  return out;
}

fs::path copy_folder(const fs::path& from, const std::string& prefix) {
  fs::path to = make_temp_dir(prefix);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  return to;
}

}  // namespace lvmflow::testing

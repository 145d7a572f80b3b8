#include "tests/stages/decode/tiny_vec2text.hpp"

#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {
struct Generated {
  fs::path dir;
  Generated() {
    if (!python_has("torch numpy sentencepiece")) return;
    dir = make_temp_dir("lvmflow-tiny-vec2text");
    if (run_fixture_script("make_tiny_vec2text.py", dir.string()) != 0) {
      ADD_FAILURE() << "tools/fixtures/make_tiny_vec2text.py failed";
      dir.clear();
    }
  }
  ~Generated() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
};
}  // namespace

const fs::path& tiny_vec2text() {
  static const Generated generated;
  return generated.dir;
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

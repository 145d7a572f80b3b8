#include "tests/stages/decode/tiny_vec2text.hpp"


#include "tests/stages/common/python_helpers.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testing {

namespace fs = std::filesystem;

namespace {

fs::path generate_or_reuse() {
  return cached_fixture("lvmflow-tiny-vec2text", "make_tiny_vec2text.py",
                        {"make_tiny_vec2text.py", "vec2text_reference.py", "make_tiny_t5.py",
                         "t5_reference.py", "safetensors_io.py"},
                        "ref.json");
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

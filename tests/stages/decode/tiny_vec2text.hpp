#pragma once
// Tiny random vec2text checkpoints + reference outputs (tools/fixtures/make_tiny_vec2text.py),
// generated once per test program.
#include <filesystem>
#include <string>
#include <vector>

#include "stages/common/json.hpp"

namespace lvmflow::testing {

// Folder holding gtr/, inversion/, inversion_gated/, corrector/, targets.npy, ref.json;
// empty when /usr/bin/python3 with torch, numpy and sentencepiece is not available.
const std::filesystem::path& tiny_vec2text();
const Json& vec2text_reference();   // ref.json
std::vector<std::int64_t> int_list(const Json& array);
std::filesystem::path copy_folder(const std::filesystem::path& from, const std::string& prefix);

}  // namespace lvmflow::testing

#define LVMFLOW_REQUIRE_TINY_VEC2TEXT()                                                      \
  do {                                                                                      \
    if (lvmflow::testing::tiny_vec2text().empty())                                          \
      GTEST_SKIP() << "/usr/bin/python3 with torch, numpy and sentencepiece not available"; \
  } while (0)

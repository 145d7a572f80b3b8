#pragma once
// Tiny random T5 models (tools/fixtures/make_tiny_t5.py), generated once per test program.
#include <filesystem>
#include <string>
#include <vector>

namespace lvmflow::testing {

// Folder holding relu_st/, gelu_bin/ and texts.txt (a cache under the system temp dir, keyed
// by the generator scripts' content; read-only for tests: damage copies only). Empty when
// python3 with torch and sentencepiece is not available (tests then skip).
const std::filesystem::path& tiny_models();
std::vector<std::string> read_lines(const std::filesystem::path& p);
// Copies a folder tree (to damage a model copy without touching the shared one).
std::filesystem::path copy_model(const std::filesystem::path& from, const std::string& prefix);
double cosine(const float* a, const float* b, std::size_t n);

}  // namespace lvmflow::testing

#define LVMFLOW_REQUIRE_TINY_MODELS()                                                       \
  do {                                                                                      \
    if (lvmflow::testing::tiny_models().empty())                                            \
      GTEST_SKIP() << "/usr/bin/python3 with torch, numpy and sentencepiece not available"; \
  } while (0)

#pragma once
// Runs the Python fixture scripts under tools/fixtures with Debian's /usr/bin/python3, which
// is the independent reference for file formats and model math in these tests.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace lvmflow::testing {

inline const char* python_exe() { return "/usr/bin/python3"; }

inline std::string fixture_script(const std::string& name) {
  return std::string(LVMFLOW_SOURCE_DIR) + "/tools/fixtures/" + name;
}

// True when python3 with the given modules (space separated, e.g. "numpy torch") imports.
inline bool python_has(const std::string& modules) {
  if (!std::filesystem::exists(python_exe())) return false;
  std::string imports;
  for (std::size_t pos = 0; pos < modules.size();) {
    std::size_t end = modules.find(' ', pos);
    if (end == std::string::npos) end = modules.size();
    if (end > pos) imports += "import " + modules.substr(pos, end - pos) + ";";
    pos = end + 1;
  }
  std::string cmd = std::string(python_exe()) + " -c '" + imports + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// Runs `/usr/bin/python3 tools/fixtures/<script> <args>`; returns the exit status.
inline int run_fixture_script(const std::string& script, const std::string& args) {
  std::string cmd = std::string(python_exe()) + " " + fixture_script(script) + " " + args;
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace lvmflow::testing

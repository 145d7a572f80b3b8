#pragma once
// Runs the Python fixture scripts under tools/fixtures with Debian's /usr/bin/python3, which
// is the independent reference for file formats and model math in these tests.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/hash.hpp"

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

// Fixtures generated once per machine. ctest runs every test case in its own process, so
// `generator` writes into a shared temp folder named `<name>-<hash of the scripts' content>`
// (a changed script makes a new folder), reused by later processes. A file lock keeps parallel
// runs from generating twice; the folder appears by rename only when complete. Returns the
// folder once `marker` exists in it; an empty path when python3 lacks torch (callers skip) or
// the generator failed (reported as a test failure).
inline std::filesystem::path cached_fixture(const std::string& name, const std::string& generator,
                                            const std::vector<std::string>& scripts,
                                            const std::string& marker) {
  namespace fs = std::filesystem;
  Sha256 h;
  for (const auto& script : scripts) h.field(sha256_file(fixture_script(script)));
  const fs::path dir = fs::temp_directory_path() / (name + "-" + h.hex().substr(0, 16));
  if (fs::exists(dir / marker)) return dir;
  // Importing torch costs seconds: only check for it when the fixtures must be generated.
  if (!python_has("torch numpy sentencepiece")) return {};
  const fs::path lock_path = dir.string() + ".lock";
  int fd = ::open(lock_path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd >= 0) ::flock(fd, LOCK_EX);
  if (!fs::exists(dir / marker)) {
    const fs::path tmp = dir.string() + ".tmp-" + std::to_string(::getpid());
    fs::remove_all(tmp);
    if (run_fixture_script(generator, tmp.string()) != 0) {
      ADD_FAILURE() << "tools/fixtures/" << generator << " failed";
      fs::remove_all(tmp);
    } else {
      fs::remove_all(dir);
      fs::rename(tmp, dir);
    }
  }
  if (fd >= 0) ::close(fd);  // releases the lock
  return fs::exists(dir / marker) ? dir : fs::path();
}

}  // namespace lvmflow::testing

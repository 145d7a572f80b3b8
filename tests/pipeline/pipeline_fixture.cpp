#include "tests/pipeline/pipeline_fixture.hpp"

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <sstream>

namespace lvmflow::testing {

std::pair<int, std::string> shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string read_file_bytes(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string sample_rebuild_yaml(const std::string& name, const std::string& more_stages) {
  return "pipeline: " + name + "\nstore: store\nstages:\n"
         "  - name: articles\n    type: ingest.wikipedia\n"
         "    params: {path: \"" LVMFLOW_SOURCE_DIR "/data/sample-pages-articles.xml\"}\n    batch_size: 4\n"
         "  - name: chunks\n    type: chunk.text\n    inputs: [articles]\n    concurrency: 2\n"
         "  - name: vectors\n    type: encode.hashed\n    inputs: [chunks]\n"
         "  - name: windows\n    type: seq.window\n    inputs: [vectors]\n"
         "    params: {context: 5, val_fraction: 0.15, seed: 42}\n" +
         more_stages;
}

}  // namespace lvmflow::testing

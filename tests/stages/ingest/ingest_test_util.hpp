#pragma once
// Helpers shared by the ingest tests: fixture paths and throwaway input files.
#include <bzlib.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/test_context.hpp"

namespace lvmflow::ingest_test {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(LVMFLOW_SOURCE_DIR) / "tests/stages/ingest/fixtures" / name;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out << bytes;
}

inline std::string bzip2(const std::string& data) {
  std::string out(data.size() + data.size() / 100 + 600, '\0');
  unsigned len = static_cast<unsigned>(out.size());
  int rc = BZ2_bzBuffToBuffCompress(out.data(), &len, const_cast<char*>(data.data()),
                                    static_cast<unsigned>(data.size()), 9, 0, 0);
  EXPECT_EQ(rc, BZ_OK);
  out.resize(len);
  return out;
}

// A temp folder removed at the end of the test.
class TempDir {
 public:
  TempDir() : path_(testing::make_temp_dir("lvmflow-ingest")) {}
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path file(const std::string& name, const std::string& bytes) const {
    auto p = path_ / name;
    write_file(p, bytes);
    return p;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A minimal export around `pages` (already XML).
inline std::string export_xml(const std::string& pages) {
  return "<mediawiki xmlns=\"http://www.mediawiki.org/xml/export-0.11/\" version=\"0.11\">\n"
         "  <siteinfo><sitename>t</sitename></siteinfo>\n" + pages + "</mediawiki>\n";
}

inline std::string page_xml(int id, const std::string& title, const std::string& escaped_text, int ns = 0) {
  return "  <page>\n    <title>" + title + "</title>\n    <ns>" + std::to_string(ns) +
         "</ns>\n    <id>" + std::to_string(id) + "</id>\n    <revision>\n      <id>" +
         std::to_string(id * 10) + "</id>\n      <text xml:space=\"preserve\">" + escaped_text +
         "</text>\n    </revision>\n  </page>\n";
}

}  // namespace lvmflow::ingest_test

// Wikitext cleaning time on pathological pages: one page made of a single unclosed construct
// repeated (what a vandalised or truncated article can look like), next to ordinary prose.
// Every pass of the cleaner is meant to be linear, so each row should be well under a second
// per megabyte; a quadratic pass shows up as minutes.
//
//   build/tools/bench/ingest/lvmflow_bench_cleaner [--kb 1024]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "stages/ingest/wikitext_cleaner.hpp"

using namespace lvmflow::ingest;

namespace {

std::string repeat_to(const std::string& unit, std::size_t bytes) {
  std::string s;
  s.reserve(bytes + unit.size());
  while (s.size() < bytes) s += unit;
  return s;
}

// Best of three, in seconds.
template <class F>
double best_seconds(F&& f) {
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t kb = 1024;
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::strcmp(argv[i], "--kb") == 0) kb = std::stoul(argv[i + 1]);
  const std::size_t bytes = kb * 1024;

  struct Case {
    const char* label;
    std::string page;
  };
  std::string nested_left, nested_right;   // "[{[{ '' }[}]": one scrub round per level
  while (2 * nested_left.size() < bytes) nested_left += nested_left.size() % 2 ? "{" : "[";
  nested_right.assign(nested_left.rbegin(), nested_left.rend());
  const std::vector<Case> cases = {
      {"prose with links and templates",
       repeat_to("The [[river]] flows {{convert|5|km|mi}} past the ''old'' mill.<ref>Smith 1990</ref>\n\n", bytes)},
      {"unclosed {{", repeat_to("{{", bytes)},
      {"unclosed {{name|", repeat_to("{{name|", bytes)},
      {"unclosed [[", repeat_to("[[", bytes)},
      {"unclosed [[target|", repeat_to("[[target|", bytes)},
      {"unclosed {| (tables)", repeat_to("{|\n", bytes)},
      {"unclosed <ref>", repeat_to("<ref>", bytes)},
      {"unclosed <ref name=a>", repeat_to("x <ref name=a>", bytes)},
      {"unclosed <!--", repeat_to("<!--", bytes)},
      {"unclosed ''' (bold)", repeat_to("'''x ", bytes)},
      {"unclosed [http://", repeat_to("[http://example.org ", bytes)},
      {"&amp without ;", repeat_to("&amp", bytes)},
      {"nested markup the scrub joins", nested_left + "''" + nested_right},
  };

  std::printf("wikitext cleaning of one %zu KB page per row (best of 3)\n\n", kb);
  std::printf("%-32s %12s %12s %8s\n", "page", "clean s", "dab check s", "< 1 s/MB");
  for (const auto& c : cases) {
    std::size_t sections = 0;
    const double clean = best_seconds([&] { sections = clean_wikitext(c.page).size(); });
    bool dab = false;
    const double check = best_seconds([&] { dab = is_disambiguation("Page", c.page); });
    const double per_mb = (clean + check) / (static_cast<double>(c.page.size()) / (1 << 20));
    std::printf("%-32s %12.3f %12.4f %8s\n", c.label, clean, check, per_mb < 1.0 ? "yes" : "NO");
    (void)sections, (void)dab;
  }
  return 0;
}

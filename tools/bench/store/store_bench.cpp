// What artifact checksums cost: hash throughput of XXH3-128 (recorded per artifact file at
// commit, checked before use and by `lvmflow verify`) against lvmflow's SHA-256 and Python's
// hashlib md5/sha256 (the peer, tools/bench/store/hash_peer.py), all over the same file read
// from the page cache; and the plan-time check of a stored artifact at each VerifyDepth.
//   build/tools/bench/store/lvmflow_store_bench [--mb 256] [--reps 3]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "pipeline/artifact_check.hpp"
#include "pipeline/hash.hpp"

namespace fs = std::filesystem;
using namespace lvmflow;

namespace {

template <class F>
double best_seconds(int reps, F f) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// bytes = 0: the row reads no file content (no throughput to show).
void row(const char* what, double bytes, double seconds) {
  if (bytes > 0) std::printf("| %-50s | %9.3f | %8.2f |\n", what, seconds * 1e3, bytes / seconds / 1e9);
  else std::printf("| %-50s | %9.3f | %8s |\n", what, seconds * 1e3, "-");
}

}  // namespace

int main(int argc, char** argv) {
  std::int64_t mb = 256;
  int reps = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--mb") mb = std::atoll(argv[i + 1]);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: lvmflow_store_bench [--mb N] [--reps N]\n");
      return 2;
    }
  }
  fs::path dir = fs::temp_directory_path() / ("lvmflow-store-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir / "artifact");
  const fs::path big = dir / "artifact" / "vectors.npy";
  {
    std::mt19937_64 rng(7);
    std::vector<std::uint64_t> block(1 << 17);   // 1 MiB
    std::ofstream out(big, std::ios::binary);
    for (std::int64_t i = 0; i < mb; ++i) {
      for (auto& w : block) w = rng();
      out.write(reinterpret_cast<const char*>(block.data()), static_cast<std::streamsize>(block.size() * 8));
    }
  }
  const double bytes = static_cast<double>(fs::file_size(big));
  xxh3_file(big);   // into the page cache

  std::printf("file: %lld MiB of random bytes (page cache), best of %d\n\n", static_cast<long long>(mb), reps);
  std::printf("| %-50s | %9s | %8s |\n", "what", "ms", "GB/s");
  std::printf("|%s|%s|%s|\n", std::string(52, '-').c_str(), std::string(11, '-').c_str(), std::string(10, '-').c_str());
  row("XXH3-128 (artifact checksum)", bytes, best_seconds(reps, [&] { xxh3_file(big); }));
  row("SHA-256, lvmflow pipeline/hash.cpp (cache keys)", bytes, best_seconds(reps, [&] { sha256_file(big); }));
  std::string cmd = "/usr/bin/python3 " + std::string(LVMFLOW_SOURCE_DIR) + "/tools/bench/store/hash_peer.py " +
                    big.string() + " " + std::to_string(reps);
  if (FILE* pipe = ::popen(cmd.c_str(), "r")) {
    char name[32];
    double seconds = 0;
    while (std::fscanf(pipe, "%31s %lf", name, &seconds) == 2)
      row(("Python hashlib " + std::string(name) + " (peer)").c_str(), bytes, seconds);
    ::pclose(pipe);
  }

  // The planner's check before a stored output is used, and `lvmflow verify`'s, on an artifact
  // with the big file and on one with a 32 MiB file (under the Quick hashing limit).
  fs::create_directories(dir / "small");
  fs::copy_file(big, dir / "small" / "vectors.npy");
  fs::resize_file(dir / "small" / "vectors.npy", 32 << 20);
  for (const char* name : {"artifact", "small"}) {
    const auto recorded = checksum_files(dir / name);
    const double size = static_cast<double>(recorded.front().size);
    std::printf("\nchecking a stored artifact holding one %.0f MiB file:\n\n", size / (1 << 20));
    std::printf("| %-50s | %9s | %8s |\n", "depth", "ms", "GB/s");
    std::printf("|%s|%s|%s|\n", std::string(52, '-').c_str(), std::string(11, '-').c_str(), std::string(10, '-').c_str());
    for (auto [label, depth] : {std::pair{"Sizes", VerifyDepth::Sizes},
                                std::pair{"Quick (plan time; hashes files <= 64 MiB)", VerifyDepth::Quick},
                                std::pair{"Full (lvmflow verify)", VerifyDepth::Full}}) {
      double s = best_seconds(reps, [&] {
        if (!check_files(dir / name, recorded, depth).empty()) std::abort();
      });
      const bool reads = depth == VerifyDepth::Full || (depth == VerifyDepth::Quick && size <= kQuickHashBytes);
      row(label, reads ? size : 0, s);
    }
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

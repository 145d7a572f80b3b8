// SHA-256 throughput: the hash behind every cache key and every input/model fingerprint taken at
// plan time (pipeline/hash.cpp), in memory and through sha256_file, next to Python's hashlib
// (which calls OpenSSL) on the same bytes in the same run. Times are CPU seconds of the hashing
// thread (best of 3), so a machine shared with other work still gives comparable figures.
//
//   build/tools/bench/engine/lvmflow_hash_bench [megabytes=256]
#include <unistd.h>

#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/hash.hpp"

namespace fs = std::filesystem;
using lvmflow::Sha256;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

template <class F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_cpu_seconds();
    f();
    best = std::min(best, thread_cpu_seconds() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 256;
  const std::size_t bytes = mb << 20;
  std::vector<char> data(bytes);
  std::uint64_t x = 0x9E3779B97F4A7C15ull;   // incompressible, deterministic content
  for (auto& c : data) x ^= x << 13, x ^= x >> 7, x ^= x << 17, c = static_cast<char>(x);

  std::string digest;
  const double memory_s = best_seconds(3, [&] { digest = Sha256().update(data.data(), data.size()).hex(); });
  // Many small updates, the way cache keys are built from fields.
  const std::size_t fields = 1u << 20;
  const double fields_s = best_seconds(3, [&] {
    Sha256 h;
    for (std::size_t i = 0; i < fields; ++i) h.field(std::string_view(data.data() + (i % 4096), 24));
    digest = h.hex();
  });

  const fs::path file = fs::temp_directory_path() / ("lvmflow-hash-bench-" + std::to_string(::getpid()));
  std::ofstream(file, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
  const double file_s = best_seconds(3, [&] { digest = lvmflow::sha256_file(file); });

  // hashlib on the same file, read whole, timed inside Python.
  double py_s = -1;
  const std::string cmd = "/usr/bin/python3 -c \"import hashlib,time,sys; b=open(sys.argv[1],'rb').read(); "
                          "t=min((lambda t0: (hashlib.sha256(b).hexdigest(), time.thread_time()-t0)[1])"
                          "(time.thread_time()) for _ in range(3)); print(t)\" " + file.string();
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    if (std::fscanf(p, "%lf", &py_s) != 1) py_s = -1;
    ::pclose(p);
  }
  fs::remove(file);

  const double total_mb = static_cast<double>(bytes) / 1e6;
  std::printf("SHA-256 throughput, %zu MiB of incompressible bytes, best of 3\n\n", mb);
  std::printf("%-46s %12s\n", "measure", "MB/CPU-s");
  std::printf("%-46s %12.0f\n", "Sha256::update, one buffer in memory", total_mb / memory_s);
  std::printf("%-46s %12.0f\n", "sha256_file (64 KiB reads, page cache warm)", total_mb / file_s);
  std::printf("%-46s %12.0f\n", "Sha256::field x 1M (24-byte fields)", fields * 32.0 / 1e6 / fields_s);
  std::printf("%-46s %12.0f\n", "python hashlib.sha256, same bytes (peer)", py_s > 0 ? total_mb / py_s : -1.0);
  return 0;
}

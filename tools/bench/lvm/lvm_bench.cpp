// LVM inference latency (batch 1 / 32 / 128) and training throughput per architecture, the
// libtorch C++ models of stages/lvm side by side with the same models in PyTorch from Python
// (tools/bench/lvm/lvm_models.py bench), measured in one run on this machine.
//
//   build-x/tools/bench/lvm/lvmflow_lvm_bench [--threads N] [--reps R] [--train-steps S] [--rounds K]
//                                     [--clock cpu|wall] [--python PATH|none] [--arch A]
//
// The machine this runs on is shared, so C++ and Python are measured alternately, arch by
// arch, for K rounds; each figure is the best round's median (fastest ms, most samples/s),
// which keeps a burst of someone else's load from landing on one side only.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/lvm/fast_inference.hpp"
#include "stages/lvm/fused_adamw.hpp"
#include "stages/lvm/lvm_models.hpp"

using namespace lvmflow;

namespace {

// Inference variants of the C++ side: the torch module, then the fast path in each dtype.
const std::vector<std::string> kVariants = {"torch", "float32", "bfloat16", "int8"};
const std::vector<int> kBatches = {1, 32, 128};

struct Row {
  std::int64_t params = 0;
  std::map<int, double> batch_ms;                        // Python: batch size -> median ms per batch
  std::map<std::string, std::map<int, double>> cpp_ms;   // C++: variant -> batch -> median ms
  std::map<std::string, double> cosine_to_float32;       // C++ reduced precisions: mean cosine to float32
  double train_samples_per_s = 0;
  std::map<std::string, double> train_phase_ms;   // forward / backward / optimizer: median ms
};

// "cpu": process CPU time (with one thread, the latency an idle machine would show, however
// loaded this one is); "wall": elapsed time.
bool g_cpu_clock = true;

double now_ms() {
  if (!g_cpu_clock)
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) * 1e-6;
}

template <class Fn>
double median_ms(Fn&& fn, int reps) {
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const double start = now_ms();
    fn();
    times.push_back(now_ms() - start);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

Row bench_cpp(const std::string& arch, int reps, int train_steps) {
  torch::manual_seed(0);
  auto model = make_model(default_model_config(arch, 768, 5));
  model->eval();
  Row row;
  row.params = model->parameter_count();
  std::map<std::string, std::unique_ptr<FastLvm>> fast;
  for (const auto& variant : kVariants)
    if (variant != "torch") fast[variant] = make_fast_lvm(*model, parse_lvm_dtype(variant, "lvm_bench"));
  for (int batch : kBatches) {
    auto x = torch::randn({batch, 5, 768});
    c10::InferenceMode guard;
    const int n = batch < 128 ? reps : std::max(5, reps / 4);
    row.cpp_ms["torch"][batch] = median_ms([&] { (void)model->forward(x).data_ptr<float>(); }, n);
    for (const auto& [variant, op] : fast) row.cpp_ms[variant][batch] = median_ms([&] { (void)op->forward(x); }, n);
  }
  {
    // How far the rounded weights move the output: mean cosine to float32 (random weights
    // and inputs; lvm.eval reports the val-cosine change of a trained model).
    c10::InferenceMode guard;
    auto x = torch::randn({128, 5, 768});
    auto reference = fast["float32"]->forward(x);
    for (const auto& variant : {"bfloat16", "int8"})
      row.cosine_to_float32[variant] = torch::cosine_similarity(fast[variant]->forward(x), reference, 1).mean().item<double>();
  }
  model->train();
  // lvm.train's optimizer: AdamW with the clipping fused into its step.
  FusedAdamW optimizer(model->parameters(), torch::optim::AdamWOptions(5e-4).weight_decay(0.01), 1.0);
  auto x = torch::randn({32, 5, 768});
  auto y = torch::nn::functional::normalize(torch::randn({32, 768}), torch::nn::functional::NormalizeFuncOptions().dim(-1));
  std::map<std::string, std::vector<double>> phases;   // where a step's time goes
  double step_ms = median_ms(
      [&] {
        const double start = now_ms();
        auto loss = torch::nn::functional::mse_loss(model->forward(x), y);
        const double forward_done = now_ms();
        optimizer.release_grads();
        loss.backward();
        const double backward_done = now_ms();
        optimizer.step();
        phases["forward"].push_back(forward_done - start);
        phases["backward"].push_back(backward_done - forward_done);
        phases["optimizer"].push_back(now_ms() - backward_done);
      },
      train_steps);
  row.train_samples_per_s = 32 * 1000.0 / step_ms;
  for (auto& [phase, times] : phases) {
    std::sort(times.begin(), times.end());
    row.train_phase_ms[phase] = times[times.size() / 2];
  }
  return row;
}

std::map<std::string, Row> bench_python(const std::string& python, int threads, int reps, int train_steps,
                                        const std::string& only) {
  std::map<std::string, Row> rows;
  if (python == "none") return rows;
  const std::string cmd = python + " " LVMFLOW_BENCH_DIR "/lvm_models.py bench --threads " + std::to_string(threads) +
                          " --reps " + std::to_string(reps) + " --train-steps " + std::to_string(train_steps) + " --clock " + (g_cpu_clock ? "cpu" : "wall") +
                          (only.empty() ? "" : " --arch " + only);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) throw Error("lvm_bench", "cannot run " + cmd, "pass --python none to skip the Python peer");
  char buf[4096];
  while (fgets(buf, sizeof buf, pipe)) {
    Json j = Json::parse(buf, "python peer output");
    Row r;
    r.params = j.at("params").as_int();
    for (int b : {1, 32, 128}) r.batch_ms[b] = j.at("batch" + std::to_string(b) + "_ms").as_double();
    r.train_samples_per_s = j.at("train_samples_per_s").as_double();
    for (const char* phase : {"forward", "backward", "optimizer"})
      r.train_phase_ms[phase] = j.at(std::string("train_") + phase + "_ms").as_double();
    rows[j.at("arch").as_string()] = r;
  }
  if (pclose(pipe) != 0) throw Error("lvm_bench", "the Python peer failed: " + cmd, "run it by hand to see why");
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 50, train_steps = 10, rounds = 3;
  std::string python = "/usr/bin/python3", only;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--threads") threads = std::stoi(argv[i + 1]);
    else if (a == "--reps") reps = std::stoi(argv[i + 1]);
    else if (a == "--train-steps") train_steps = std::stoi(argv[i + 1]);
    else if (a == "--python") python = argv[i + 1];
    else if (a == "--arch") only = argv[i + 1];
    else if (a == "--rounds") rounds = std::max(1, std::stoi(argv[i + 1]));
    else if (a == "--clock" && (std::string(argv[i + 1]) == "cpu" || std::string(argv[i + 1]) == "wall"))
      g_cpu_clock = std::string(argv[i + 1]) == "cpu";
    else {
      std::cerr << "usage: lvmflow_lvm_bench [--threads N] [--reps R] [--train-steps S] [--rounds K] [--clock cpu|wall] [--python PATH|none] [--arch A]\n";
      return 2;
    }
  }
  try {
    if (g_cpu_clock && threads != 1) {
      std::cerr << "lvm_bench: --clock cpu needs --threads 1 (CPU time of several threads is not latency)\n";
      return 2;
    }
    set_compute_threads(threads);
    // The Python peer loads the same OpenBLAS, which reads its thread count at start-up.
    setenv("OPENBLAS_NUM_THREADS", std::to_string(threads).c_str(), 1);
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    std::printf("load average at start: %.2f (%u hardware threads); clock: %s\n\n", load[0],
                std::thread::hardware_concurrency(), g_cpu_clock ? "process CPU time" : "wall time");
    // Seed figures (../shared/seeds/002, Apple M1 Max, batch 1, ms per query).
    const std::map<std::string, double> seed_ms = {{"amn", 0.49}, {"lstm", 0.56}, {"gru", 2.08}, {"transformer", 2.68}};
    std::vector<std::string> archs = {"amn", "lstm", "gru", "transformer"};
    if (!only.empty()) archs = {only};
    std::map<std::string, Row> cpp, py;
    auto keep_best = [](std::map<std::string, Row>& best, const std::string& arch, const Row& r) {
      if (!best.count(arch)) {
        best[arch] = r;
        return;
      }
      Row& b = best[arch];
      for (auto& [batch, ms] : b.batch_ms) ms = std::min(ms, r.batch_ms.at(batch));
      for (auto& [variant, by_batch] : b.cpp_ms)
        for (auto& [batch, ms] : by_batch) ms = std::min(ms, r.cpp_ms.at(variant).at(batch));
      if (r.train_samples_per_s > b.train_samples_per_s) {
        b.train_samples_per_s = r.train_samples_per_s;
        b.train_phase_ms = r.train_phase_ms;
      }
    };
    for (int round = 0; round < rounds; ++round) {
      for (const auto& arch : archs) {
        keep_best(cpp, arch, bench_cpp(arch, reps, train_steps));
        for (const auto& [name, row] : bench_python(python, threads, reps, train_steps, arch)) keep_best(py, name, row);
      }
    }
    std::printf("LVM inference, median ms per batch, best of %d rounds (%d torch thread%s, %d reps; batch 128: %d reps)\n"
                "torch: the libtorch module (LvmModel::forward); float32/bfloat16/int8: the fast path (fast_inference.hpp)\n"
                "with weights in that dtype; best: the fastest of those; speedup: Python / best\n",
                rounds, threads, threads == 1 ? "" : "s", reps, std::max(5, reps / 4));
    std::printf("%-12s %6s %9s %9s %9s %9s %-9s %10s %8s %10s %9s\n", "arch", "batch", "torch", "float32", "bfloat16",
                "int8", "best", "Python ms", "speedup", "best ms/q", "seed ms/q");
    for (const auto& arch : archs) {
      for (int b : kBatches) {
        const Row& r = cpp[arch];
        std::string best = "float32";
        for (const auto& v : {"bfloat16", "int8"})
          if (r.cpp_ms.at(v).at(b) < r.cpp_ms.at(best).at(b)) best = v;
        const double best_ms = r.cpp_ms.at(best).at(b);
        const bool have_py = py.count(arch) != 0;
        char python[32] = "-", speedup[32] = "-", seed[32] = "";
        if (have_py) {
          std::snprintf(python, sizeof python, "%.3f", py[arch].batch_ms[b]);
          std::snprintf(speedup, sizeof speedup, "%.2fx", py[arch].batch_ms[b] / best_ms);
        }
        if (b == 1) std::snprintf(seed, sizeof seed, "%.2f", seed_ms.at(arch));
        std::printf("%-12s %6d %9.3f %9.3f %9.3f %9.3f %-9s %10s %8s %10.4f %9s\n", arch.c_str(), b,
                    r.cpp_ms.at("torch").at(b), r.cpp_ms.at("float32").at(b), r.cpp_ms.at("bfloat16").at(b),
                    r.cpp_ms.at("int8").at(b), best.c_str(), python, speedup, best_ms / b, seed);
      }
    }
    std::printf("\nReduced precision vs float32 (random weights, 128 random windows): mean cosine to the float32 output\n");
    std::printf("%-12s %12s %12s %12s\n", "arch", "params", "bfloat16", "int8");
    for (const auto& arch : archs)
      std::printf("%-12s %12lld %12.6f %12.6f\n", arch.c_str(), static_cast<long long>(cpp[arch].params),
                  cpp[arch].cosine_to_float32.at("bfloat16"), cpp[arch].cosine_to_float32.at("int8"));
    std::printf("\nLVM training, samples/s (batch 32, MSE, AdamW, grad clip 1.0; median of %d steps, best of %d rounds)\n",
                train_steps, rounds);
    std::printf("%-12s %14s %14s %9s\n", "arch", "C++", "Python", "speedup");
    for (const auto& arch : archs) {
      const bool have_py = py.count(arch) != 0;
      std::printf("%-12s %14.1f %14s %9s\n", arch.c_str(), cpp[arch].train_samples_per_s,
                  have_py ? std::to_string(py[arch].train_samples_per_s).substr(0, 8).c_str() : "-",
                  have_py ? (std::to_string(cpp[arch].train_samples_per_s / py[arch].train_samples_per_s).substr(0, 4) + "x").c_str()
                          : "-");
    }
    std::printf("\nLVM training step phases, median ms (best round): forward / backward / optimizer "
                "(backward includes releasing / zeroing the old gradients; optimizer: C++ fused clip + AdamW,\n"
                "Python clip_grad_norm_ + AdamW)\n");
    std::printf("%-12s %26s %26s\n", "arch", "C++", "Python");
    for (const auto& arch : archs) {
      auto phases = [](const Row& r) {
        char text[64];
        std::snprintf(text, sizeof text, "%.1f / %.1f / %.1f", r.train_phase_ms.at("forward"),
                      r.train_phase_ms.at("backward"), r.train_phase_ms.at("optimizer"));
        return std::string(text);
      };
      std::printf("%-12s %26s %26s\n", arch.c_str(), phases(cpp[arch]).c_str(),
                  py.count(arch) ? phases(py[arch]).c_str() : "-");
    }
  } catch (const std::exception& e) {
    std::cerr << "lvm_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

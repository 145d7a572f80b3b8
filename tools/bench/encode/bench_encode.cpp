// Throughput of the GTR-T5 encoder (encode.gtr_t5's TextEncoder) on GTR-T5-base-sized random
// weights (d_model 768, 12 layers, 12 heads, d_ff 3072, vocab 32128) and chunks of exactly
// --tokens tokens, next to the same model run by PyTorch from Python (encode_peer.py) in the
// same run, timed in alternating rounds (best round each). Prints one table with the cosine
// between the C++ float32 vectors and every other row's.
//
//   lvmflow_encode_bench [--model DIR] [--chunks 64] [--tokens 100] [--threads 2] [--repeats 2]
//                [--dtypes float32,bfloat16] [--no-python]
// The Python peer runs twice: with PyTorch's default thread count and with one per core.
// Without --model a random base-sized folder is generated once (tools/fixtures/make_tiny_t5.py
// --base) under the system temp dir.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "pipeline/error.hpp"
#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/text_encoder.hpp"

namespace fs = std::filesystem;
using namespace lvmflow;

namespace {

struct Options {
  fs::path model;
  std::size_t chunks = 64;
  std::int64_t tokens = 100;
  int threads = 0;
  int repeats = 2;
  std::vector<std::string> dtypes = {"float32", "bfloat16"};
  bool python = true;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

std::string python() { return "/usr/bin/python3"; }

std::string source(const std::string& rel) { return std::string(LVMFLOW_SOURCE_DIR) + "/" + rel; }

fs::path base_model() {
  fs::path dir = fs::temp_directory_path() / "lvmflow-gtr-t5-base-random";
  if (!fs::exists(dir / "model.safetensors")) {
    std::cerr << "generating GTR-T5-base-sized random weights in " << dir << " ...\n";
    fs::path tmp = dir.string() + ".tmp";
    fs::remove_all(tmp);
    std::string cmd = python() + " " + source("tools/fixtures/make_tiny_t5.py") + " " + tmp.string() + " --base";
    if (std::system(cmd.c_str()) != 0) throw Error("lvmflow_encode_bench", "make_tiny_t5.py --base failed");
    fs::remove_all(dir);
    fs::rename(tmp, dir);
  }
  return dir;
}

// Texts long enough that truncation to `tokens` leaves exactly `tokens` tokens each.
std::vector<std::string> make_texts(std::size_t n) {
  const char* words[] = {"latent", "vector", "models", "predict", "the", "next", "sentence", "embedding",
                         "wikipedia", "articles", "become", "ordered", "chunks", "dense", "vectors",
                         "through", "a", "frozen", "encoder", "fox", "jumps", "over", "lazy", "dog"};
  const std::size_t nw = sizeof words / sizeof *words;
  std::vector<std::string> texts;
  std::uint64_t state = 12345;
  for (std::size_t i = 0; i < n; ++i) {
    std::string t = "Chunk " + std::to_string(i) + ":";
    for (int w = 0; w < 120; ++w) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      t += " ";
      t += words[(state >> 33) % nw];
    }
    texts.push_back(t);
  }
  return texts;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double min_cosine(const std::vector<float>& a, const std::vector<float>& b, std::size_t dim) {
  double worst = 1.0;
  for (std::size_t r = 0; r * dim < a.size(); ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      ab += double(a[r * dim + j]) * b[r * dim + j];
      aa += double(a[r * dim + j]) * a[r * dim + j];
      bb += double(b[r * dim + j]) * b[r * dim + j];
    }
    worst = std::min(worst, ab / std::sqrt(aa * bb));
  }
  return worst;
}

struct Row {
  std::string impl, dtype;
  int threads;
  double chunks_per_s;
  std::string note;
};

int run(const Options& opt) {
  const fs::path model = opt.model.empty() ? base_model() : opt.model;
  const auto texts = make_texts(opt.chunks);
  const fs::path work = fs::temp_directory_path() / ("lvmflow-bench-encode-" + std::to_string(::getpid()));
  fs::create_directories(work);
  {
    std::ofstream f(work / "texts.txt");
    for (const auto& t : texts) f << t << "\n";
  }
  const int threads = opt.threads > 0 ? opt.threads : default_encoder_threads();
  set_encoder_threads(threads);

  // Loaded once; timed in rounds that alternate with the Python peer, so load from other
  // processes on a shared machine hits both sides alike. Best round per row is reported.
  struct Cpp {
    std::string dtype;
    std::unique_ptr<TextEncoder> enc;
    double load_s = 0, best_s = 1e30;
    std::vector<float> out;
  };
  std::vector<Cpp> cpp;
  for (const auto& dtype : opt.dtypes) {
    Cpp c;
    c.dtype = dtype;
    EncoderOptions eo;
    eo.model_dir = model;
    eo.max_length = opt.tokens;
    eo.dtype = parse_compute_dtype(dtype, "--dtypes");
    auto t_load = std::chrono::steady_clock::now();
    c.enc = make_text_encoder(eo);
    c.load_s = seconds_since(t_load);
    for (const auto& t : texts)
      if (static_cast<std::int64_t>(c.enc->token_count(t)) != opt.tokens)
        throw Error("lvmflow_encode_bench", "a text has " + std::to_string(c.enc->token_count(t)) + " tokens, not " +
                                        std::to_string(opt.tokens));
    c.out.resize(texts.size() * c.enc->dim());
    c.enc->encode({texts.begin(), texts.begin() + 4}, c.out.data());  // warm-up
    cpp.push_back(std::move(c));
  }
  const std::size_t dim = cpp.empty() ? 0 : cpp.front().enc->dim();

  // PyTorch's default thread count, and one per core (what a user tuning Python would try).
  struct Py {
    int threads;
    int reported_threads = 0;
    double best_cps = 0;
    double min_cos = 0;
  };
  std::vector<Py> py;
  if (opt.python) py = {{0}, {static_cast<int>(std::thread::hardware_concurrency())}};

  for (int round = 0; round < opt.repeats; ++round) {
    for (auto& c : cpp) {
      auto t0 = std::chrono::steady_clock::now();
      c.enc->encode(texts, c.out.data());
      c.best_s = std::min(c.best_s, seconds_since(t0));
      std::cerr << "round " << round + 1 << ": C++ " << c.dtype << " " << texts.size() / c.best_s << " chunks/s (best so far)\n";
    }
    for (auto& p : py) {
      const fs::path out_npy = work / "py.npy";
      std::string cmd = python() + " " + source("tools/bench/encode/encode_peer.py") + " --model " + model.string() +
                        " --texts " + (work / "texts.txt").string() + " --max-length " + std::to_string(opt.tokens) +
                        " --threads " + std::to_string(p.threads) + " --repeats 1 --out " + out_npy.string() +
                        " > " + (work / "py.json").string();
      if (std::system(cmd.c_str()) != 0) throw Error("lvmflow_encode_bench", "Python peer failed: " + cmd);
      Json j = read_json_file((work / "py.json").string());
      p.reported_threads = static_cast<int>(j.at("threads").as_int());
      p.best_cps = std::max(p.best_cps, j.at("chunks_per_s").as_double());
      p.min_cos = cpp.empty() ? 0.0 : min_cosine(read_npy(out_npy).data, cpp.front().out, dim);
      std::cerr << "round " << round + 1 << ": Python threads " << p.reported_threads << " " << p.best_cps
                << " chunks/s (best so far)\n";
    }
  }

  std::vector<Row> rows;
  for (const auto& c : cpp) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "load %.1f s", c.load_s);
    std::string note = buf;
    if (&c != &cpp.front()) {
      std::snprintf(buf, sizeof buf, "; min cosine vs C++ %s %.6f", cpp.front().dtype.c_str(),
                    min_cosine(c.out, cpp.front().out, dim));
      note += buf;
    }
    rows.push_back({"C++ libtorch (lvmflow)", c.dtype, threads, static_cast<double>(texts.size()) / c.best_s, note});
  }
  for (const auto& p : py) {
    char buf[128];
    std::snprintf(buf, sizeof buf, "%smin cosine vs C++ %s %.6f", p.threads == 0 ? "PyTorch default threads; " : "",
                  cpp.empty() ? "-" : cpp.front().dtype.c_str(), p.min_cos);
    rows.push_back({"Python PyTorch (encode_peer.py)", "float32", p.reported_threads, p.best_cps, buf});
  }
  fs::remove_all(work);

  double best_python = 0;
  for (const auto& r : rows)
    if (r.impl.rfind("Python", 0) == 0) best_python = std::max(best_python, r.chunks_per_s);
  std::printf("\nGTR-T5-base-sized encoder, %zu chunks x %lld tokens, best of %d alternating rounds, model %s\n\n", texts.size(),
              static_cast<long long>(opt.tokens), opt.repeats, model.string().c_str());
  std::printf("| implementation | dtype | threads | chunks/s | vs best Python | notes |\n|---|---|---|---|---|---|\n");
  for (const auto& r : rows)
    std::printf("| %s | %s | %d | %.2f | %s | %s |\n", r.impl.c_str(), r.dtype.c_str(), r.threads, r.chunks_per_s,
                best_python > 0 ? (std::to_string(r.chunks_per_s / best_python).substr(0, 4) + "x").c_str() : "-",
                r.note.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) throw Error("lvmflow_encode_bench", a + " needs a value");
        return argv[++i];
      };
      if (a == "--model") opt.model = value();
      else if (a == "--chunks") opt.chunks = std::stoul(value());
      else if (a == "--tokens") opt.tokens = std::stoll(value());
      else if (a == "--threads") opt.threads = std::stoi(value());
      else if (a == "--repeats") opt.repeats = std::stoi(value());
      else if (a == "--dtypes") opt.dtypes = split(value());
      else if (a == "--no-python") opt.python = false;
      else if (a == "-h" || a == "--help") {
        std::cout << "lvmflow_encode_bench [--model DIR] [--chunks 64] [--tokens 100] [--threads N] [--repeats 2]\n"
                     "             [--dtypes float32,bfloat16] [--no-python]\n";
        return 0;
      } else {
        throw Error("lvmflow_encode_bench", "unknown option " + a, "see --help");
      }
    }
    return run(opt);
  } catch (const std::exception& e) {
    std::cerr << "lvmflow_encode_bench: " << e.what() << "\n";
    return 1;
  }
}

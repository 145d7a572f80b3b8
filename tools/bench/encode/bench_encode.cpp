// Throughput of the GTR-T5 encoder (encode.gtr_t5's TextEncoder) on GTR-T5-base-sized random
// weights (d_model 768, 12 layers, 12 heads, d_ff 3072, vocab 32128) and chunks of exactly
// --tokens tokens, next to the same model run by PyTorch from Python (encode_peer.py) in the
// same run. Prints one table plus the cosine between the C++ and Python vectors.
//
//   bench_encode [--model DIR] [--chunks 64] [--tokens 100] [--threads 2] [--repeats 2]
//                [--dtypes float32,bfloat16] [--no-python]
// The Python peer runs twice: with PyTorch's default thread count and with ours.
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
    if (std::system(cmd.c_str()) != 0) throw Error("bench_encode", "make_tiny_t5.py --base failed");
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
  std::vector<Row> rows;
  std::vector<float> reference;  // C++ float32 vectors
  std::size_t dim = 0;

  for (const auto& dtype : opt.dtypes) {
    EncoderOptions eo;
    eo.model_dir = model;
    eo.max_length = opt.tokens;
    eo.dtype = parse_compute_dtype(dtype, "--dtypes");
    auto t_load = std::chrono::steady_clock::now();
    auto enc = make_text_encoder(eo);
    const double load_s = seconds_since(t_load);
    dim = enc->dim();
    for (const auto& t : texts)
      if (static_cast<std::int64_t>(enc->token_count(t)) != opt.tokens)
        throw Error("bench_encode", "a text has " + std::to_string(enc->token_count(t)) + " tokens, not " +
                                        std::to_string(opt.tokens));
    std::vector<float> out(texts.size() * dim);
    enc->encode({texts.begin(), texts.begin() + 4}, out.data());  // warm-up
    double best = 1e30;
    for (int r = 0; r < opt.repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      enc->encode(texts, out.data());
      best = std::min(best, seconds_since(t0));
    }
    std::string note = "load " + std::to_string(load_s).substr(0, 4) + " s";
    if (reference.empty()) {
      reference = out;
    } else {
      char buf[96];
      std::snprintf(buf, sizeof buf, "; min cosine vs C++ float32 %.6f", min_cosine(out, reference, dim));
      note += buf;
    }
    rows.push_back({"C++ libtorch (lvmflow)", dtype, threads, static_cast<double>(texts.size()) / best, note});
    std::cerr << rows.back().impl << " " << dtype << ": " << rows.back().chunks_per_s << " chunks/s\n";
  }

  if (opt.python) {
    std::vector<int> py_threads = {0, threads};
    for (int pt : py_threads) {
      const fs::path out_npy = work / ("py_" + std::to_string(pt) + ".npy");
      std::string cmd = python() + " " + source("tools/bench/encode/encode_peer.py") + " --model " + model.string() +
                        " --texts " + (work / "texts.txt").string() + " --max-length " + std::to_string(opt.tokens) +
                        " --threads " + std::to_string(pt) + " --repeats " + std::to_string(opt.repeats) +
                        " --out " + out_npy.string() + " > " + (work / "py.json").string();
      if (std::system(cmd.c_str()) != 0) throw Error("bench_encode", "Python peer failed: " + cmd);
      Json j = read_json_file((work / "py.json").string());
      NpyArray py = read_npy(out_npy);
      char buf[96];
      std::snprintf(buf, sizeof buf, "%smin cosine vs C++ float32 %.6f", pt == 0 ? "PyTorch default threads; " : "",
                    reference.empty() ? 0.0 : min_cosine(py.data, reference, dim));
      rows.push_back({"Python PyTorch (encode_peer.py)", "float32", static_cast<int>(j.at("threads").as_int()),
                      j.at("chunks_per_s").as_double(), buf});
      std::cerr << rows.back().impl << " threads " << rows.back().threads << ": " << rows.back().chunks_per_s << " chunks/s\n";
    }
  }
  fs::remove_all(work);

  double best_python = 0;
  for (const auto& r : rows)
    if (r.impl.rfind("Python", 0) == 0) best_python = std::max(best_python, r.chunks_per_s);
  std::printf("\nGTR-T5-base-sized encoder, %zu chunks x %lld tokens, best of %d, model %s\n\n", texts.size(),
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
        if (i + 1 >= argc) throw Error("bench_encode", a + " needs a value");
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
        std::cout << "bench_encode [--model DIR] [--chunks 64] [--tokens 100] [--threads N] [--repeats 2]\n"
                     "             [--dtypes float32,bfloat16] [--no-python]\n";
        return 0;
      } else {
        throw Error("bench_encode", "unknown option " + a, "see --help");
      }
    }
    return run(opt);
  } catch (const std::exception& e) {
    std::cerr << "bench_encode: " << e.what() << "\n";
    return 1;
  }
}

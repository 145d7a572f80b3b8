// decode.vec2text latency: seconds per decoded vector for each step count, beam setting and
// batch size, with T5-base-sized random weights (inversion + corrector, 12+12 layers, 768-d,
// vocab 32128) and a GTR-T5-base-sized random re-embedding encoder. Random weights never
// emit EOS early, so every generation runs to max_length: a worst case per step.
// Each row runs the same work with the PyTorch peer (decode_peer.py, eager float32 with a
// key/value cache, the math of the tests' reference) and says whether the texts agree.
//
//   lvmflow_decode_bench [MODELS_DIR] [--vectors N] [--max-length L] [--threads T] [--quick]
//                        [--case STEPS,WIDTH,BEAMS,BATCH[,DTYPE]]...   (replaces the default rows)
//
// MODELS_DIR is filled by tools/fixtures/make_tiny_vec2text.py MODELS_DIR --base when empty
// (~2.2 GB, a minute or two).
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "stages/common/json.hpp"
#include "stages/common/npy.hpp"
#include "stages/decode/vec2text_inverter.hpp"
#include "stages/encode/text_encoder.hpp"

using namespace lvmflow;
namespace fs = std::filesystem;

namespace {

const char* kSentences[] = {
    "The quick brown fox jumps over the lazy dog near the river bank in the early morning.",
    "Latent vector models predict the next sentence embedding from the previous ones.",
    "Wikipedia articles become ordered text chunks that a frozen encoder turns into vectors.",
    "FAISS finds the nearest known chunk for a predicted vector in a few milliseconds.",
    "The corrector re-embeds its hypothesis and moves it closer to the target embedding.",
    "Ada Lovelace wrote the first published algorithm for Babbage's analytical engine in 1843.",
    "A small recurrent model learns to continue a sequence of dense sentence vectors.",
    "Beam search keeps several candidate texts and ranks them by cosine to the target.",
};

struct Case {
  std::int64_t steps, width, beams;
  std::size_t batch;
  ComputeDType dtype = ComputeDType::Float32;   // lvmflow only; the peer column is its float32 figure
};

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  ::pclose(p);
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// CPU seconds of this process: on a shared, oversubscribed machine the wall clock mostly
// measures the neighbours, CPU time the work (both are reported).
double cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path models = fs::temp_directory_path() / "lvmflow-decode-bench-models";
  std::size_t vectors = 4;
  std::int64_t max_length = 32;
  int threads = 0;
  bool quick = false;
  std::vector<Case> only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--case" && i + 1 < argc) {
      long long steps = 0, width = 0, beams = 1;
      std::size_t batch = 1;
      char dtype[16] = "float32";
      if (std::sscanf(argv[++i], "%lld,%lld,%lld,%zu,%15s", &steps, &width, &beams, &batch, dtype) < 4) {
        std::fprintf(stderr, "--case wants STEPS,WIDTH,BEAMS,BATCH[,DTYPE]\n");
        return 2;
      }
      only.push_back({steps, width, beams, batch, parse_compute_dtype(dtype, "--case")});
      continue;
    }
    if (a == "--vectors" && i + 1 < argc) vectors = std::stoul(argv[++i]);
    else if (a == "--max-length" && i + 1 < argc) max_length = std::stoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--quick") quick = true;
    else models = a;
  }
  const std::string source = LVMFLOW_SOURCE_DIR;
  if (!fs::exists(models / "corrector" / "pytorch_model.bin.index.json")) {
    std::printf("generating T5-base-sized random checkpoints into %s ...\n", models.c_str());
    std::fflush(stdout);
    const std::string cmd = "/usr/bin/python3 " + source + "/tools/fixtures/make_tiny_vec2text.py " + models.string() + " --base";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "fixture generation failed\n");
      return 1;
    }
  }
  set_encoder_threads(threads);
  const int used_threads = threads > 0 ? threads : default_encoder_threads();

  auto t_load = std::chrono::steady_clock::now();
  EncoderOptions eo;
  eo.model_dir = models / "gtr";
  eo.pooling = Pooling::Vec2Text;
  eo.max_length = 32;
  auto embedder = make_text_encoder(eo);
  Vec2TextOptions vo;
  vo.inversion_model = models / "inversion";
  vo.corrector_model = models / "corrector";
  Vec2TextInverter inverter(vo, embedder.get(), models / "gtr" / "spiece.model");
  std::printf("%s\nloaded in %.1f s; %zu vectors, max_length %lld, %d threads\n\n", inverter.describe().c_str(),
              seconds_since(t_load), vectors, static_cast<long long>(max_length), used_threads);
  vo.dtype = ComputeDType::BFloat16;
  Vec2TextInverter inverter_bf16(vo, embedder.get(), models / "gtr" / "spiece.model");
  vo.dtype = ComputeDType::Int8Dynamic;
  Vec2TextInverter inverter_int8(vo, embedder.get(), models / "gtr" / "spiece.model");

  // Targets: GTR (vec2text pooling) embeddings of real sentences.
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < vectors; ++i) texts.push_back(kSentences[i % (sizeof kSentences / sizeof *kSentences)]);
  const std::size_t dim = embedder->dim();
  std::vector<float> targets(vectors * dim);
  embedder->encode(texts, targets.data());   // warm-up (first-call allocations)
  auto t_enc = std::chrono::steady_clock::now();
  const double cpu_enc = cpu_seconds();
  embedder->encode(texts, targets.data());
  const double encode_per_text = seconds_since(t_enc) / static_cast<double>(vectors);
  const double encode_cpu_per_text = (cpu_seconds() - cpu_enc) / static_cast<double>(vectors);
  // Warm-up of the decoders (the peer does the same before its clock starts).
  inverter.invert(targets.data(), 1, Vec2TextSearch{1, 0, 1, 4});
  inverter_bf16.invert(targets.data(), 1, Vec2TextSearch{1, 0, 1, 4});
  inverter_int8.invert(targets.data(), 1, Vec2TextSearch{1, 0, 1, 4});
  const fs::path targets_path = models / "bench_targets.npy";
  write_npy(targets_path, {static_cast<std::int64_t>(vectors), static_cast<std::int64_t>(dim)}, targets.data());

  std::vector<Case> cases = {{0, 0, 1, 1},       {0, 0, 1, vectors},       {0, 0, 4, 1},
                             {1, 0, 1, 1},       {1, 0, 1, vectors},       {5, 0, 1, vectors},
                             {5, 2, 2, vectors}, {0, 0, 1, 1, ComputeDType::BFloat16},
                             {1, 0, 1, vectors, ComputeDType::BFloat16}, {0, 0, 1, 1, ComputeDType::Int8Dynamic},
                             {1, 0, 1, vectors, ComputeDType::Int8Dynamic}};
  if (quick) cases = {{0, 0, 1, 1}, {1, 0, 1, vectors}};
  if (!only.empty()) cases = only;

  std::printf("GTR-T5-base encode (re-embedding cost, 32 tokens): %.3f s wall, %.3f s CPU per text\n\n", encode_per_text,
              encode_cpu_per_text);
  std::printf("| num_steps | sequence_beam_width | num_beams | batch | weights | lvmflow wall s/vector | PyTorch wall s/vector "
              "| lvmflow CPU s/vector | PyTorch CPU s/vector | speed-up (CPU) | same texts |\n");
  std::printf("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---|\n");
  for (const Case& c : cases) {
    Vec2TextSearch search{c.steps, c.width, c.beams, max_length};
    std::vector<std::string> ours;
    auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = cpu_seconds();
    for (std::size_t b = 0; b < vectors; b += c.batch) {
      const Vec2TextInverter& which = c.dtype == ComputeDType::BFloat16      ? inverter_bf16
                                      : c.dtype == ComputeDType::Int8Dynamic ? inverter_int8
                                                                             : inverter;
      auto part = which.invert(targets.data() + b * dim, std::min(c.batch, vectors - b), search);
      ours.insert(ours.end(), part.begin(), part.end());
    }
    const double ours_s = seconds_since(t0) / static_cast<double>(vectors);
    const double ours_cpu = (cpu_seconds() - cpu0) / static_cast<double>(vectors);

    const std::string cmd = "/usr/bin/python3 " + source + "/tools/bench/decode/decode_peer.py " + models.string() + " " +
                            targets_path.string() + " " + std::to_string(c.steps) + " " + std::to_string(c.width) + " " +
                            std::to_string(c.beams) + " " + std::to_string(c.batch) + " " + std::to_string(max_length) +
                            " " + std::to_string(used_threads);
    double peer_s = -1, peer_cpu = -1;
    std::string same = "peer failed";
    try {
      const std::string out = run_capture(cmd);
      const Json j = Json::parse(out.substr(out.find('{')), "decode_peer.py output");
      peer_s = j.at("seconds").as_double() / static_cast<double>(vectors);
      peer_cpu = j.at("cpu_seconds").as_double() / static_cast<double>(vectors);
      std::size_t agree = 0;
      const auto& theirs = j.at("texts").as_array();
      for (std::size_t i = 0; i < ours.size() && i < theirs.size(); ++i) agree += ours[i] == theirs[i].as_string();
      same = std::to_string(agree) + "/" + std::to_string(vectors);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "peer: %s\n", e.what());
    }
    std::printf("| %lld | %lld | %lld | %zu | %s | %.2f | %.2f | %.2f | %.2f | %.2fx | %s |\n", static_cast<long long>(c.steps),
                static_cast<long long>(c.width), static_cast<long long>(c.beams), c.batch,
                to_string(c.dtype), ours_s, peer_s, ours_cpu, peer_cpu,
                peer_cpu > 0 ? peer_cpu / ours_cpu : 0.0, same.c_str());
    std::fflush(stdout);
  }
  return 0;
}

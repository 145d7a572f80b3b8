#include "stages/encode/encode_command.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "pipeline/error.hpp"
#include "stages/common/npy.hpp"
#include "stages/encode/encoder_record.hpp"
#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

namespace {

constexpr const char* kUsage =
    R"(usage: lvmflow encode [--model DIR] [--pooling sentence-transformers|vec2text]
                      [--max-length N] [--dtype float32|bfloat16|int8] [--threads N]
                      INPUT.txt -o OUT.npy

Embeds one text per line of INPUT.txt ('-' reads stdin) into OUT.npy, a float32 array with
row i = line i that numpy.load opens. OUT.npy's encoder record (model, fingerprint, pooling,
max length, dim) is written next to it as OUT.encoder.json.

  --model DIR      sentence-transformers folder as published for
                   sentence-transformers/gtr-t5-base (config.json, model.safetensors or
                   pytorch_model.bin, spiece.model, modules.json, 1_Pooling/, 2_Dense/).
                   Without it the built-in hashed encoder is used: deterministic and offline,
                   but NOT GTR-T5 (its vectors are not comparable to GTR-T5's).
  --pooling P      sentence-transformers (default: mean -> Dense -> L2 normalise) or
                   vec2text (mean of the encoder output, the space vec2text decodes)
  --max-length N   tokens per text including EOS (default: the model's max_seq_length)
  --dtype D        float32 (default, exact), bfloat16 or int8 (dynamic quantisation) for
                   the linear layers: faster, with a small cosine loss (docs/benchmarks/encode.md)
  --threads N      intra-op threads (default: tuned for this machine)
  -h, --help       this text
)";

constexpr std::size_t kLinesPerPass = 512;  // texts handed to the encoder at a time

struct Args {
  EncoderOptions options;
  int threads = 0;
  std::string input, output;
};

[[noreturn]] void usage_error(const std::string& why) {
  throw Error("lvmflow encode", why, "see `lvmflow encode --help`");
}

std::int64_t parse_int(const std::string& flag, const std::string& text) {
  try {
    std::size_t used = 0;
    long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  usage_error(flag + " expects an integer, got '" + text + "'");
}

Args parse_args(int argc, char** argv) {
  Args a;
  std::string pooling = "sentence-transformers", dtype = "float32";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--model") a.options.model_dir = value();
    else if (arg == "--pooling") pooling = value();
    else if (arg == "--max-length") a.options.max_length = parse_int(arg, value());
    else if (arg == "--dtype") dtype = value();
    else if (arg == "--threads") a.threads = static_cast<int>(parse_int(arg, value()));
    else if (arg == "-o" || arg == "--output") a.output = value();
    else if (arg.size() > 1 && arg[0] == '-' ) usage_error("unknown option " + arg);
    else if (a.input.empty()) a.input = arg;
    else usage_error("more than one input file given ('" + a.input + "' and '" + arg + "')");
  }
  if (a.input.empty()) usage_error("no INPUT.txt given");
  if (a.output.empty()) usage_error("no output given (-o OUT.npy)");
  a.options.pooling = parse_pooling(pooling, "--pooling");
  a.options.dtype = parse_compute_dtype(dtype, "--dtype");
  if (a.options.max_length < 0 || a.options.max_length == 1) usage_error("--max-length must be at least 2");
  if (a.threads < 0) usage_error("--threads must be positive");
  return a;
}

std::filesystem::path record_path(const std::string& output) {
  std::filesystem::path p(output);
  if (p.extension() == ".npy") p.replace_extension();
  return p.string() + ".encoder.json";
}

int run(const Args& a) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (a.input != "-") {
    file.open(a.input, std::ios::binary);
    if (!file) throw Error(a.input, "cannot open input", "check the path");
    in = &file;
  }
  set_encoder_threads(a.threads);
  auto encoder = make_text_encoder(a.options);
  if (encoder->is_builtin())
    std::cerr << "lvmflow encode: no --model given: using the built-in encoder builtin-hash-768, "
                 "NOT GTR-T5 (hashed word + word-pair features; not comparable to GTR-T5 vectors)\n";
  else
    std::cerr << "lvmflow encode: " << encoder->name() << ", pooling " << to_string(encoder->pooling())
              << ", max_length " << encoder->max_length() << ", dim " << encoder->dim() << "\n";

  const auto t0 = std::chrono::steady_clock::now();
  NpyWriter writer(a.output, encoder->dim());
  std::vector<std::string> lines;
  std::vector<float> vectors;
  std::size_t rows = 0;
  auto flush = [&] {
    vectors.resize(lines.size() * encoder->dim());
    encoder->encode(lines, vectors.data());
    writer.append(vectors.data(), lines.size());
    rows += lines.size();
    lines.clear();
  };
  std::string line;
  while (std::getline(*in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (lines.size() == kLinesPerPass) flush();
  }
  if (!lines.empty()) flush();
  writer.close();
  write_json_file(record_path(a.output).string(), encoder_record(*encoder, a.options.model_dir, rows));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "lvmflow encode: " << rows << " texts -> " << a.output << " [" << rows << " x " << encoder->dim()
            << " float32] in " << s << " s\n";
  return 0;
}

}  // namespace

int run_encode_command(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
  }
  try {
    return run(parse_args(argc, argv));
  } catch (const Error& e) {
    std::cerr << "lvmflow encode: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "lvmflow encode: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace lvmflow

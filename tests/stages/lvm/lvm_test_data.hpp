#pragma once
// Small synthetic window sets for the lvm tests, laid out as seq.window leaves them: window
// batches (rows by reference) plus a folder holding their vectors.npy.
#include <filesystem>
#include <memory>

#include "stages/lvm/trainer.hpp"
#include "tests/stages/lvm/synthetic_corpus.hpp"
#include "stages/lvm/window_data.hpp"
#include "stages/seq/sequence_windows.hpp"
#include "tests/support/test_context.hpp"

namespace lvmflow::testdata {

struct SyntheticWindows {
  std::filesystem::path dir = testing::make_temp_dir("lvm-windows");
  std::vector<Batch> batches;
  SyntheticWindows() = default;
  SyntheticWindows(const SyntheticWindows&) = delete;
  SyntheticWindows& operator=(const SyntheticWindows&) = delete;
  ~SyntheticWindows() { std::filesystem::remove_all(dir); }
  // The windows as a barrier stage's input.
  StageInput input(const std::string& name = "windows") const { return {name, dir, batches}; }
};

inline std::unique_ptr<SyntheticWindows> synthetic_window_batches(std::size_t dim = 32, std::size_t articles = 16,
                                                                  std::size_t chunks = 10, std::size_t context = 3) {
  SyntheticCorpusOptions corpus;
  corpus.articles = articles;
  corpus.chunks_per_article = chunks;
  corpus.dim = dim;
  corpus.vocabulary = 400;
  corpus.topic_words = 12;
  WindowOptions w;
  w.context = context;
  w.val_fraction = 0.25;
  w.rows_per_batch = 64;
  auto out = std::make_unique<SyntheticWindows>();
  out->batches = make_windows(StageInput{"chunks", {}, {make_synthetic_chunks(corpus)}}, out->dir, w, "test windows");
  return out;
}

// Small, fast training settings for tests.
inline TrainSettings tiny(const std::string& arch, std::int64_t epochs) {
  TrainSettings s;
  s.arch = arch;
  s.hidden = 16;
  s.layers = 1;
  s.epochs = epochs;
  s.batch_size = 16;
  s.lr = 3e-3;
  s.seed = 11;
  return s;
}

inline WindowData synthetic_windows(std::size_t dim = 32, std::size_t articles = 16, std::size_t chunks = 10,
                                    std::size_t context = 3) {
  // The mapping outlives the folder: the data stays readable after the files are removed.
  return collect_windows(synthetic_window_batches(dim, articles, chunks, context)->input(), "test windows");
}

}  // namespace lvmflow::testdata

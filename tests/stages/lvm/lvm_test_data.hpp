#pragma once
// Small synthetic window sets for the lvm tests.
#include "tests/stages/lvm/synthetic_corpus.hpp"
#include "stages/lvm/trainer.hpp"
#include "stages/lvm/window_data.hpp"
#include "stages/window/sequence_windows.hpp"

namespace lvmflow::testdata {

inline std::vector<Batch> synthetic_window_batches(std::size_t dim = 32, std::size_t articles = 16,
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
  return make_windows({make_synthetic_chunks(corpus)}, w, "test windows");
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
  return collect_windows(synthetic_window_batches(dim, articles, chunks, context), "test windows");
}

}  // namespace lvmflow::testdata

#pragma once
// Turns the ordered chunk vectors of each article into (context, next) training windows and
// splits them into train / validation by article. Kept apart from the stage class so the
// bookkeeping can be tested on plain batches.
//
// Windows refer to vectors instead of copying them: a window row carries `target_row`, the
// row of its target chunk in the window artifact's vectors.npy, and its N context vectors are
// the N rows before it (the same article's preceding chunks, in position order). That file is
// a hard link of the encoder's vectors.npy whenever the encoder's rows already keep every
// article's chunks consecutive and in order (the usual case: chunk.text emits them so), and
// otherwise the chunk rows rewritten in (article, position) order - once, not once per window.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/batch.hpp"
#include "pipeline/stage.hpp"

namespace lvmflow {

struct WindowOptions {
  std::size_t context = 5;        // N context vectors before each target
  double val_fraction = 0.1;      // share of articles held out for validation
  std::uint64_t seed = 42;        // decides which articles are held out
  std::size_t rows_per_batch = 1024;
};

struct WindowStats {
  std::size_t chunks = 0;
  std::size_t articles = 0;             // distinct articles in the input
  std::size_t articles_too_short = 0;   // fewer than context + 1 chunks: no window
  std::size_t articles_train = 0;
  std::size_t articles_val = 0;
  std::size_t windows_train = 0;
  std::size_t windows_val = 0;
  bool vectors_linked = false;          // vectors.npy is the input's own file (no copy)
};

// Split value of a window row (int column `split`).
enum WindowSplit : std::int64_t { kTrainSplit = 0, kValSplit = 1 };

// Where an article falls, in [0, 1): a hash of (seed, article id). An article is held out when
// this is below val_fraction, so its side never depends on which other articles are present.
double article_split_score(std::int64_t article_id, std::uint64_t seed);

// Builds the windows of all chunk rows of `chunks` (columns article_id, position and one vector
// per row, as encode.* stages produce them) and writes `dir`/vectors.npy for them. Output rows
// are ordered by article id, then target position; ids are the target chunk ids; int columns
// article_id, target_position, split, context (N) and target_row; no vectors. Reads the input
// in at most two streaming passes. Throws lvmflow::Error (naming `where`) on missing columns,
// vectors, or a position that occurs twice in one article.
std::vector<Batch> make_windows(const StageInput& chunks, const std::filesystem::path& dir,
                                const WindowOptions& options, const std::string& where,
                                WindowStats* stats = nullptr);

}  // namespace lvmflow

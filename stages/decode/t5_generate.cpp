#include "stages/decode/t5_generate.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

namespace lvmflow {

std::vector<std::vector<std::int64_t>> t5_greedy(const T5EncoderDecoder& t5, const at::Tensor& encoded,
                                                 const at::Tensor& mask, std::int64_t max_length) {
  const std::int64_t B = encoded.size(0);
  std::vector<std::vector<std::int64_t>> seqs(B, std::vector<std::int64_t>{T5EncoderDecoder::kDecoderStart});
  T5DecoderCache cache = t5.start_decoder(encoded, mask);
  std::vector<std::int64_t> active(B);   // rows of `cache` -> batch rows still generating
  for (std::int64_t i = 0; i < B; ++i) active[i] = i;
  at::Tensor last = at::full({B, 1}, T5EncoderDecoder::kDecoderStart, at::kLong);
  for (std::int64_t len = 1; len < max_length && !active.empty(); ++len) {
    at::Tensor next = t5.decode(cache, last).select(1, 0).argmax(-1).contiguous();
    const std::int64_t* tok = next.data_ptr<std::int64_t>();
    std::vector<std::int64_t> keep_rows, still_active;
    for (std::size_t r = 0; r < active.size(); ++r) {
      seqs[active[r]].push_back(tok[r]);
      if (tok[r] != T5EncoderDecoder::kEos) {
        keep_rows.push_back(static_cast<std::int64_t>(r));
        still_active.push_back(active[r]);
      }
    }
    // Finished rows leave the batch (HF keeps them and feeds padding; their output is the same).
    if (keep_rows.size() != active.size() && !keep_rows.empty()) {
      at::Tensor rows = at::tensor(keep_rows, at::kLong);
      cache.select_rows(rows);
      next = next.index_select(0, rows);
    }
    active = std::move(still_active);
    last = next.view({-1, 1});
  }
  // HF pads finished rows to the longest sequence of the batch.
  std::size_t longest = 0;
  for (const auto& s : seqs) longest = std::max(longest, s.size());
  for (auto& s : seqs) s.resize(longest, T5EncoderDecoder::kPad);
  return seqs;
}

namespace {

// HF's BeamHypotheses: the num_beams best finished hypotheses of one row.
struct FinishedBeams {
  std::size_t capacity;
  std::vector<BeamHypothesis> hyps;
  double worst() const {
    double w = std::numeric_limits<double>::infinity();
    for (const auto& h : hyps) w = std::min(w, h.score);
    return w;
  }
  void add(std::vector<std::int64_t> tokens, double score) {
    if (hyps.size() < capacity || score > worst()) {
      hyps.push_back({std::move(tokens), score});
      if (hyps.size() > capacity) {
        auto it = std::min_element(hyps.begin(), hyps.end(),
                                   [](const auto& a, const auto& b) { return a.score < b.score; });
        hyps.erase(it);
      }
    }
  }
  // early_stopping=False: done when the best running beam cannot beat the worst kept one.
  bool done(double best_running_sum, std::int64_t cur_len) const {
    return hyps.size() >= capacity && worst() >= best_running_sum / static_cast<double>(cur_len);
  }
};

}  // namespace

std::vector<std::vector<BeamHypothesis>> t5_beam_search(const T5EncoderDecoder& t5, const at::Tensor& encoded,
                                                        const at::Tensor& mask, std::int64_t num_beams,
                                                        std::int64_t max_length, std::int64_t num_return) {
  const std::int64_t B = encoded.size(0), K = num_beams, N = B * K;
  const std::int64_t V = t5.arch().config.vocab_size;
  T5DecoderCache cache = t5.start_decoder(encoded.repeat_interleave(K, 0), mask.repeat_interleave(K, 0));
  std::vector<std::vector<std::int64_t>> seqs(N, std::vector<std::int64_t>{T5EncoderDecoder::kDecoderStart});
  std::vector<double> beam_scores(N, 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t k = 1; k < K; ++k) beam_scores[b * K + k] = -1e9;   // all beams start identical
  std::vector<FinishedBeams> finished(B, FinishedBeams{static_cast<std::size_t>(K), {}});
  std::vector<bool> row_done(B, false);
  at::Tensor last = at::full({N, 1}, T5EncoderDecoder::kDecoderStart, at::kLong);
  std::int64_t cur_len = 1;
  for (; cur_len < max_length; ++cur_len) {
    at::Tensor logp = at::log_softmax(t5.decode(cache, last).select(1, 0), -1);
    logp = logp + at::tensor(beam_scores, at::kDouble).to(at::kFloat).view({N, 1});
    auto top = at::topk(logp.view({B, K * V}), 2 * K, /*dim=*/1);
    at::Tensor top_scores = std::get<0>(top).contiguous(), top_idx = std::get<1>(top).contiguous();
    const float* sc = top_scores.data_ptr<float>();
    const std::int64_t* ix = top_idx.data_ptr<std::int64_t>();

    std::vector<std::int64_t> source_rows(N), next_tokens(N);
    std::vector<double> next_scores(N);
    for (std::int64_t b = 0; b < B; ++b) {
      if (row_done[b]) {   // HF keeps feeding padding into finished rows
        for (std::int64_t k = 0; k < K; ++k) {
          source_rows[b * K + k] = b * K;
          next_tokens[b * K + k] = T5EncoderDecoder::kPad;
          next_scores[b * K + k] = 0;
        }
        continue;
      }
      std::int64_t filled = 0;
      for (std::int64_t rank = 0; rank < 2 * K && filled < K; ++rank) {
        const double s = sc[b * 2 * K + rank];
        const std::int64_t beam = ix[b * 2 * K + rank] / V, token = ix[b * 2 * K + rank] % V;
        const std::int64_t row = b * K + beam;
        if (token == T5EncoderDecoder::kEos) {
          if (rank >= K) continue;   // only EOS among the top num_beams candidates finishes a beam
          std::vector<std::int64_t> tokens = seqs[row];
          tokens.push_back(T5EncoderDecoder::kEos);
          finished[b].add(std::move(tokens), s / static_cast<double>(cur_len));
        } else {
          source_rows[b * K + filled] = row;
          next_tokens[b * K + filled] = token;
          next_scores[b * K + filled] = s;
          ++filled;
        }
      }
      row_done[b] = finished[b].done(sc[b * 2 * K], cur_len);
    }
    std::vector<std::vector<std::int64_t>> next_seqs(N);
    for (std::int64_t r = 0; r < N; ++r) {
      next_seqs[r] = seqs[source_rows[r]];
      next_seqs[r].push_back(next_tokens[r]);
    }
    seqs = std::move(next_seqs);
    beam_scores = next_scores;
    if (std::all_of(row_done.begin(), row_done.end(), [](bool d) { return d; })) break;
    cache.select_rows(at::tensor(source_rows, at::kLong));
    last = at::tensor(next_tokens, at::kLong).view({N, 1});
  }
  std::vector<std::vector<BeamHypothesis>> out(B);
  for (std::int64_t b = 0; b < B; ++b) {
    if (!row_done[b])   // max_length reached: the running beams compete with the finished ones
      for (std::int64_t k = 0; k < K; ++k)
        finished[b].add(seqs[b * K + k], beam_scores[b * K + k] / static_cast<double>(seqs[b * K + k].size()));
    auto& hyps = finished[b].hyps;
    std::stable_sort(hyps.begin(), hyps.end(), [](const auto& a, const auto& c) { return a.score > c.score; });
    hyps.resize(std::min<std::size_t>(hyps.size(), static_cast<std::size_t>(num_return)));
    out[b] = std::move(hyps);
  }
  return out;
}

}  // namespace lvmflow

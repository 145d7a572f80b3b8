#include "stages/decode/vec2text_inverter.hpp"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <optional>
#include <set>

#include "pipeline/error.hpp"
#include "stages/common/sentencepiece_tokenizer.hpp"
#include "stages/decode/t5_generate.hpp"
#include "stages/decode/vec2text_models.hpp"
#include "stages/encode/text_encoder.hpp"

namespace lvmflow {

namespace {
using Sequences = std::vector<std::vector<std::int64_t>>;

// Right-pads token sequences with 0 into [N, L].
at::Tensor pad_sequences(const Sequences& seqs) {
  std::size_t longest = 1;
  for (const auto& s : seqs) longest = std::max(longest, s.size());
  at::Tensor out = at::zeros({static_cast<std::int64_t>(seqs.size()), static_cast<std::int64_t>(longest)}, at::kLong);
  auto acc = out.accessor<std::int64_t, 2>();
  for (std::size_t i = 0; i < seqs.size(); ++i)
    for (std::size_t j = 0; j < seqs[i].size(); ++j) acc[i][j] = seqs[i][j];
  return out;
}

// One generation: greedy when one candidate is wanted, else beam search returning `count`
// hypotheses per row (rows of one input adjacent, best first).
Sequences generate(const T5EncoderDecoder& t5, const at::Tensor& x, const at::Tensor& mask, std::int64_t count,
                   std::int64_t max_length) {
  at::Tensor encoded = t5.encode(x, mask);
  if (count == 1) return t5_greedy(t5, encoded, mask, max_length);
  Sequences out;
  for (auto& row : t5_beam_search(t5, encoded, mask, count, max_length, count))
    for (auto& hyp : row) out.push_back(std::move(hyp.tokens));
  return out;
}
}  // namespace

struct Vec2TextInverter::Impl {

  Vec2TextOptions options;
  InversionModel inversion;
  std::optional<CorrectorModel> corrector;
  const TextEncoder* embedder;
  SentencePieceTokenizer tokenizer;

  Impl(const Vec2TextOptions& o, const TextEncoder* e, const std::filesystem::path& spiece)
      : options(o), inversion(o.inversion_model, o.dtype), embedder(e), tokenizer(spiece) {
    if (!o.corrector_model.empty()) corrector.emplace(o.corrector_model, o.dtype);
  }

  std::int64_t max_length(const Vec2TextSearch& search) const {
    return search.max_length > 0 ? search.max_length : inversion.config().max_seq_length;
  }

  // The checks that depend on the search settings (the others are made once, on load).
  void check(const Vec2TextSearch& s) const {
    const std::string where = "decode.vec2text";
    if (s.num_steps < 0 || s.sequence_beam_width < 0 || s.num_beams < 1 || s.max_length < 0 || s.max_length == 1)
      throw Error(where, "num_steps, sequence_beam_width must be >= 0, num_beams >= 1, max_length 0 or >= 2");
    if (s.num_steps > 0 && !corrector)
      throw Error(where, "num_steps " + std::to_string(s.num_steps) + " needs a corrector model",
                  "set corrector_model (e.g. a copy of jxm/gtr__nq__32__correct) or num_steps: 0");
    if (s.num_steps > 0 && !embedder)
      throw Error(where, "corrections re-embed each hypothesis and need a GTR-T5 encoder",
                  "set encoder_model to a sentence-transformers/gtr-t5-base folder");
  }

  // HF batch_decode(skip_special_tokens=True): pad, EOS, unk and the sentinel ids past the
  // SentencePiece vocabulary (<extra_id_*>, unused rows of the embedding) are dropped.
  std::string text_of(const std::vector<std::int64_t>& ids) const {
    std::vector<int> keep;
    const std::int64_t pieces = tokenizer.piece_size();
    for (std::int64_t id : ids)
      if (id != T5EncoderDecoder::kPad && id != T5EncoderDecoder::kEos && id != tokenizer.unk_id() && id < pieces)
        keep.push_back(static_cast<int>(id));
    return tokenizer.decode(keep);
  }

  // Text of each sequence, re-embedded as vec2text's Corrector.embed_generated_hypothesis does.
  at::Tensor embed(const Sequences& seqs) const {
    std::vector<std::string> texts;
    texts.reserve(seqs.size());
    for (const auto& s : seqs) texts.push_back(text_of(s));
    at::Tensor out = at::empty({static_cast<std::int64_t>(seqs.size()), static_cast<std::int64_t>(embedder->dim())});
    embedder->encode(texts, out.data_ptr<float>());
    return out;
  }

  Sequences invert(const at::Tensor& e, const Vec2TextSearch& search) const {
    const std::int64_t B = e.size(0);
    const std::int64_t steps = search.num_steps, width = search.sequence_beam_width;
    if (steps == 0) {
      auto [x, m] = inversion.encoder_inputs(e);
      Sequences cands = generate(inversion.t5(), x, m, search.num_beams, max_length(search));
      Sequences best;
      for (std::int64_t b = 0; b < B; ++b) best.push_back(cands[b * search.num_beams]);
      return best;
    }
    // Initial hypothesis: greedy up to max_seq_length (Corrector._get_hypothesis_uncached).
    auto [x0, m0] = inversion.encoder_inputs(e);
    Sequences hyp = generate(inversion.t5(), x0, m0, 1, inversion.config().max_seq_length);
    at::Tensor h = embed(hyp);
    at::Tensor targets = e;
    const std::int64_t per_row = std::max(width, search.num_beams);   // num_return_sequences
    for (std::int64_t step = 0; step < steps; ++step) {
      at::Tensor ids = pad_sequences(hyp);
      auto [x, m] = corrector->encoder_inputs(targets, h, ids, (ids != T5EncoderDecoder::kPad).to(at::kLong));
      Sequences cands = generate(corrector->t5(), x, m, per_row, max_length(search));
      at::Tensor cand_emb = embed(cands);
      if (static_cast<std::int64_t>(cands.size()) == targets.size(0)) {   // greedy: one per row
        hyp = std::move(cands);
        h = cand_emb;
        continue;
      }
      const std::int64_t per = static_cast<std::int64_t>(cands.size()) / B;   // candidates of one target
      at::Tensor cos = at::cosine_similarity(cand_emb, e.repeat_interleave(per, 0), 1).view({B, per});
      Sequences next;
      std::vector<std::int64_t> picked;
      if (width <= 1 || step == steps - 1) {
        // One survivor: the candidate closest to the target (sequence_beam_width 0 keeps the
        // top beam, as vec2text ranks by beam score when it does not rank by cosine).
        at::Tensor best = width == 0 ? at::zeros({B}, at::kLong) : cos.argmax(1);
        for (std::int64_t b = 0; b < B; ++b) picked.push_back(b * per + best[b].item<std::int64_t>());
        targets = e;
      } else {
        // Keep the `width` best distinct candidates of each target.
        at::Tensor order = std::get<1>(cos.topk(per, 1)).contiguous();
        for (std::int64_t b = 0; b < B; ++b) {
          std::set<std::vector<std::int64_t>> seen;
          std::vector<std::int64_t> kept;
          for (std::int64_t j = 0; j < per && static_cast<std::int64_t>(kept.size()) < width; ++j) {
            const std::int64_t c = b * per + order[b][j].item<std::int64_t>();
            if (seen.insert(cands[c]).second) kept.push_back(c);
          }
          while (static_cast<std::int64_t>(kept.size()) < width) kept.push_back(kept.front());
          picked.insert(picked.end(), kept.begin(), kept.end());
        }
        targets = e.repeat_interleave(width, 0);
      }
      for (std::int64_t c : picked) next.push_back(cands[c]);
      hyp = std::move(next);
      h = cand_emb.index_select(0, at::tensor(picked, at::kLong));
    }
    return hyp;
  }
};

Vec2TextInverter::Vec2TextInverter(const Vec2TextOptions& options, const TextEncoder* embedder,
                                   const std::filesystem::path& spiece_model) {
  const std::string where = "decode.vec2text";
  if (options.search.num_steps > 0 && options.corrector_model.empty())
    throw Error(where, "num_steps " + std::to_string(options.search.num_steps) + " needs a corrector model",
                "set corrector_model (e.g. a copy of jxm/gtr__nq__32__correct) or num_steps: 0");
  impl_ = std::make_unique<Impl>(options, embedder, spiece_model);
  impl_->check(options.search);
  const std::size_t dim = impl_->inversion.embedder_dim();
  if (impl_->corrector && static_cast<std::size_t>(impl_->corrector->embedder_dim()) != dim)
    throw Error(options.corrector_model.string(),
                "corrector expects " + std::to_string(impl_->corrector->embedder_dim()) +
                    "-D embeddings, the inversion model " + std::to_string(dim) + "-D",
                "use the corrector trained with this inversion model");
  if (embedder) {
    if (embedder->dim() != dim)
      throw Error(where, "encoder_model makes " + std::to_string(embedder->dim()) + "-D vectors, the vec2text models expect " +
                             std::to_string(dim) + "-D", "use the GTR-T5 model the vec2text checkpoints were trained on");
    if (embedder->pooling() != Pooling::Vec2Text)
      throw Error(where, "the re-embedding encoder must use the vec2text pooling (masked mean, no Dense, no normalise)",
                  "this is what vec2text's GTR models were trained on");
  }
  if (impl_->tokenizer.piece_size() > impl_->inversion.t5().arch().config.vocab_size)
    throw Error(spiece_model.string(),
                "tokenizer has " + std::to_string(impl_->tokenizer.piece_size()) + " pieces, more than the model's " +
                    std::to_string(impl_->inversion.t5().arch().config.vocab_size) + "-token vocabulary",
                "use the T5 spiece.model (e.g. from the gtr-t5-base folder)");
}

Vec2TextInverter::~Vec2TextInverter() = default;

std::vector<std::string> Vec2TextInverter::invert(const float* targets, std::size_t count) const {
  return invert(targets, count, impl_->options.search);
}

std::vector<std::string> Vec2TextInverter::invert(const float* targets, std::size_t count,
                                                  const Vec2TextSearch& search) const {
  impl_->check(search);
  c10::InferenceMode guard;
  if (count == 0) return {};
  const auto dim = static_cast<std::int64_t>(embedder_dim());
  at::Tensor e = at::from_blob(const_cast<float*>(targets), {static_cast<std::int64_t>(count), dim}, at::kFloat).clone();
  std::vector<std::string> texts;
  for (const auto& seq : impl_->invert(e, search)) texts.push_back(impl_->text_of(seq));
  return texts;
}

std::size_t Vec2TextInverter::embedder_dim() const { return impl_->inversion.embedder_dim(); }
std::int64_t Vec2TextInverter::max_seq_length() const { return impl_->inversion.config().max_seq_length; }

std::string Vec2TextInverter::describe() const {
  const Vec2TextOptions& o = impl_->options;
  const Vec2TextSearch& q = o.search;
  std::string s = "vec2text: inversion " + o.inversion_model.string() + " (" + impl_->inversion.t5().arch().describe() + ")";
  if (impl_->corrector) s += ", corrector " + o.corrector_model.string();
  s += ", num_steps " + std::to_string(q.num_steps) + ", sequence_beam_width " + std::to_string(q.sequence_beam_width) +
       ", num_beams " + std::to_string(q.num_beams) + ", max_length " + std::to_string(impl_->max_length(q)) +
       ", " + to_string(o.dtype) + " weights";
  return s;
}

}  // namespace lvmflow

#include "stages/decode/text_metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace lvmflow {

std::vector<std::string> word_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  };
  for (unsigned char c : text) {
    // Bytes >= 0x80 (UTF-8 letters) stay inside words: only ASCII punctuation splits.
    if (std::isalnum(c) || c >= 0x80) {
      word.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
      if (!std::isspace(c)) out.emplace_back(1, static_cast<char>(c));
    }
  }
  flush();
  return out;
}

namespace {
std::map<std::vector<std::string>, int> ngram_counts(const std::vector<std::string>& tokens, std::size_t n) {
  std::map<std::vector<std::string>, int> counts;
  for (std::size_t i = 0; i + n <= tokens.size(); ++i)
    ++counts[std::vector<std::string>(tokens.begin() + static_cast<std::ptrdiff_t>(i),
                                      tokens.begin() + static_cast<std::ptrdiff_t>(i + n))];
  return counts;
}
}  // namespace

double bleu4(const std::string& hypothesis, const std::string& reference) {
  const auto hyp = word_tokens(hypothesis), ref = word_tokens(reference);
  if (hyp.empty() || ref.empty()) return 0.0;
  double log_precision = 0;
  for (std::size_t n = 1; n <= 4; ++n) {
    const auto h = ngram_counts(hyp, n), r = ngram_counts(ref, n);
    double matched = 0, total = hyp.size() >= n ? static_cast<double>(hyp.size() - n + 1) : 0.0;
    for (const auto& [gram, count] : h) {
      auto it = r.find(gram);
      if (it != r.end()) matched += std::min(count, it->second);   // clipped counts
    }
    if (n == 1) {
      if (matched == 0) return 0.0;   // no word in common: BLEU is 0 regardless of smoothing
    } else {
      matched += 1;
      total += 1;
    }
    log_precision += std::log(matched / total) / 4.0;
  }
  const double c = static_cast<double>(hyp.size()), r = static_cast<double>(ref.size());
  const double brevity = c >= r ? 1.0 : std::exp(1.0 - r / c);
  return brevity * std::exp(log_precision);
}

double token_f1(const std::string& hypothesis, const std::string& reference) {
  const auto h = word_tokens(hypothesis), r = word_tokens(reference);
  const std::set<std::string> hs(h.begin(), h.end()), rs(r.begin(), r.end());
  if (hs.empty() && rs.empty()) return 1.0;
  if (hs.empty() || rs.empty()) return 0.0;
  double common = 0;
  for (const auto& w : hs) common += rs.count(w);
  if (common == 0) return 0.0;
  const double precision = common / static_cast<double>(hs.size()), recall = common / static_cast<double>(rs.size());
  return 2 * precision * recall / (precision + recall);
}

}  // namespace lvmflow

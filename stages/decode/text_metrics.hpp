#pragma once
// Text similarity of a decoded text against the true text, implemented here (no NLTK /
// sacrebleu in C++): both on the same word tokens, lower-cased runs of letters/digits, each
// other non-space character a token of its own (so "dog." -> "dog", ".").
#include <string>
#include <vector>

namespace lvmflow {

std::vector<std::string> word_tokens(const std::string& text);

// Sentence BLEU-4 in [0, 1]: geometric mean of modified n-gram precisions (n = 1..4) times the
// brevity penalty, with add-one smoothing of the n >= 2 precisions (Lin & Och 2004; "method 2"
// of Chen & Cherry 2014), so a short near-miss does not score 0. Empty hypothesis -> 0.
double bleu4(const std::string& hypothesis, const std::string& reference);

// Token F1 as vec2text reports it (token_set_f1 in trainers/base.py): precision and recall of
// the word *sets*; 0 when either side is empty (1 when both are).
double token_f1(const std::string& hypothesis, const std::string& reference);

}  // namespace lvmflow

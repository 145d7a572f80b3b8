#pragma once
// Splits a paragraph of prose into sentences. A boundary is a '.', '!' or '?' (with any closing
// quotes or brackets) followed by a space and something that can start a sentence (a capital,
// a digit, an opening quote or bracket). A period does not end a sentence after a known
// abbreviation ("Dr.", "e.g.", "approx."), a dotted acronym ("U.S.", "Ph.D."), an initial
// ("J. R. R. Tolkien") or inside a number ("3.14" has no space after the point anyway).
#include <string_view>
#include <vector>

namespace lvmflow::chunk {

// Returns the sentences of `text` in order, as trimmed views into it.
std::vector<std::string_view> split_sentences(std::string_view text);

}  // namespace lvmflow::chunk

#include "stages/chunk/sentence_splitter.hpp"

#include <cctype>
#include <cstdint>
#include <string>
#include <unordered_set>

namespace lvmflow::chunk {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Words that take a period without ending a sentence (compared in lower case).
const std::unordered_set<std::string>& abbreviations() {
  static const std::unordered_set<std::string> words = {
      "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "vs", "cf", "al", "approx",
      "no", "nos", "vol", "vols", "pp", "p", "fig", "figs", "ed", "eds", "jan", "feb", "mar", "apr",
      "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "inc", "ltd", "co", "corp", "gen",
      "col", "lt", "sgt", "capt", "cmdr", "adm", "rev", "hon", "gov", "sen", "rep", "pres", "est",
      "ca", "c", "b", "d", "fl", "r", "viz", "ibid", "op", "cit", "dept", "univ", "assn", "bros",
      "ave", "blvd", "rd", "mts", "no", "ch", "sec", "art", "maj", "messrs", "mme", "mlle", "ste",
      "ltd", "plc", "bros", "cap", "vs", "jr", "esp", "incl", "lat", "long", "min", "max"};
  return words;
}

// Decodes the code point at s[i] (valid UTF-8 assumed; ingest checked it).
std::uint32_t code_point(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  unsigned c = b(0);
  if (c < 0x80) return c;
  if (c < 0xE0) return ((c & 0x1F) << 6) | (b(1) & 0x3F);
  if (c < 0xF0) return ((c & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
  return ((c & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
}

// Can the character at s[i] begin a sentence?
bool can_start_sentence(std::string_view s, std::size_t i) {
  std::uint32_t cp = code_point(s, i);
  if (cp < 0x80) {
    char c = static_cast<char>(cp);
    return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
           c == '"' || c == '\'' || c == '(' || c == '[';
  }
  if (cp == 0x201C || cp == 0x2018 || cp == 0xAB || cp == 0xBF || cp == 0xA1) return true;  // “ ‘ « ¿ ¡
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return true;               // Latin-1 capitals
  if (cp >= 0x100 && cp <= 0x17F) return cp % 2 == 0;                     // Latin Extended-A capitals
  if (cp >= 0x391 && cp <= 0x3A9) return true;                            // Greek capitals
  if (cp >= 0x400 && cp <= 0x42F) return true;                            // Cyrillic capitals
  return cp >= 0x3000;                                                    // CJK and beyond: no case
}

bool is_closing(std::string_view s, std::size_t i, std::size_t& len) {
  char c = s[i];
  if (c == '"' || c == '\'' || c == ')' || c == ']') { len = 1; return true; }
  std::uint32_t cp = code_point(s, i);
  if (cp == 0x201D || cp == 0x2019 || cp == 0xBB) { len = cp == 0xBB ? 2 : 3; return true; }
  return false;
}

// Is the '.' at s[dot] part of an abbreviation, an acronym or an initial rather than an end?
bool period_is_abbreviation(std::string_view s, std::size_t dot) {
  std::size_t b = dot;
  while (b > 0 && !is_space(s[b - 1]) && s[b - 1] != '(' && s[b - 1] != '"' && s[b - 1] != '[') --b;
  std::string_view word = s.substr(b, dot - b);
  if (word.empty()) return false;
  if (word.find('.') != std::string_view::npos) {
    // "U.S", "e.g", "Ph.D": letters separated by periods.
    bool dotted = true;
    for (char c : word) dotted = dotted && (std::isalpha(static_cast<unsigned char>(c)) || c == '.');
    if (dotted) return true;
  }
  if (word.size() == 1 && std::isalpha(static_cast<unsigned char>(word[0]))) return true;   // initial
  std::string lower(word);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return abbreviations().count(lower) != 0;
}

}  // namespace

std::vector<std::string_view> split_sentences(std::string_view text) {
  std::vector<std::string_view> out;
  auto push = [&](std::size_t b, std::size_t e) {
    while (b < e && is_space(text[b])) ++b;
    while (e > b && is_space(text[e - 1])) --e;
    if (e > b) out.push_back(text.substr(b, e - b));
  };
  std::size_t start = 0, i = 0, n = text.size();
  while (i < n) {
    char c = text[i];
    bool ellipsis = static_cast<unsigned char>(c) == 0xE2 && i + 2 < n &&
                    static_cast<unsigned char>(text[i + 1]) == 0x80 &&
                    static_cast<unsigned char>(text[i + 2]) == 0xA6;
    if (c != '.' && c != '!' && c != '?' && !ellipsis) { ++i; continue; }
    std::size_t j = i + (ellipsis ? 3 : 1);
    while (j < n && (text[j] == '.' || text[j] == '!' || text[j] == '?')) ++j;
    std::size_t len = 0;
    while (j < n && is_closing(text, j, len)) j += len;
    if (j < n && !is_space(text[j])) { i = j; continue; }   // "3.14", "a.m.x", "word.)x"
    std::size_t k = j;
    while (k < n && is_space(text[k])) ++k;
    if (k >= n) break;
    bool boundary = can_start_sentence(text, k);
    if (boundary && c == '.' && j == i + 1 && period_is_abbreviation(text, i)) boundary = false;
    if (boundary) {
      push(start, j);
      start = k;
    }
    i = k;
  }
  push(start, n);
  return out;
}

}  // namespace lvmflow::chunk

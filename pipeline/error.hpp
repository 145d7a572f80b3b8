#pragma once
// One error type for everything a user can get wrong: it carries what went wrong, where
// (file:line:col, stage, item) and how to fix it, so the CLI can print one clear line.
#include <stdexcept>
#include <string>

namespace lvmflow {

class Error : public std::runtime_error {
 public:
  Error(std::string where, std::string what, std::string fix = {})
      : std::runtime_error(format(where, what, fix)),
        where_(std::move(where)), what_(std::move(what)), fix_(std::move(fix)) {}

  const std::string& where() const { return where_; }
  const std::string& problem() const { return what_; }
  const std::string& fix() const { return fix_; }

 private:
  static std::string format(const std::string& where, const std::string& what,
                            const std::string& fix) {
    std::string s = where.empty() ? what : where + ": " + what;
    if (!fix.empty()) s += " (" + fix + ")";
    return s;
  }
  std::string where_, what_, fix_;
};

}  // namespace lvmflow

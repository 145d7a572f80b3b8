#pragma once
// The CLI's --json output as a chain of calls (begin_object().field(...).end_object()), built
// into an nlohmann::ordered_json document and written when the outermost value closes.
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <vector>

namespace lvmflow {

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}
  JsonWriter& begin_object() { return open(nlohmann::ordered_json::object()); }
  JsonWriter& end_object() { return close(); }
  JsonWriter& begin_array() { return open(nlohmann::ordered_json::array()); }
  JsonWriter& end_array() { return close(); }
  JsonWriter& key(const std::string& k) {
    key_ = k;
    return *this;
  }
  // Strings, booleans, integers and doubles (NaN and infinities are written as null).
  template <class T>
  JsonWriter& value(const T& v) {
    place(nlohmann::ordered_json(v));
    if (open_.empty()) flush();
    return *this;
  }
  template <class T>
  JsonWriter& field(const std::string& k, const T& v) {
    key(k);
    return value(v);
  }

 private:
  nlohmann::ordered_json* place(nlohmann::ordered_json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    nlohmann::ordered_json& parent = *open_.back();   // parents never change while a child is open
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    return &(parent[key_] = std::move(v));
  }
  JsonWriter& open(nlohmann::ordered_json container) {
    open_.push_back(place(std::move(container)));
    return *this;
  }
  JsonWriter& close() {
    open_.pop_back();
    if (open_.empty()) flush();
    return *this;
  }
  void flush() { out_ << root_.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace); }

  std::ostream& out_;
  nlohmann::ordered_json root_;
  std::vector<nlohmann::ordered_json*> open_;
  std::string key_;
};

}  // namespace lvmflow

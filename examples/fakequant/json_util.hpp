// SPDX-License-Identifier: MIT
// JSON helpers shared by the subcommands.
#pragma once

#include <fakequant/atomic_file.hpp>
#include <fakequant/gguf/value.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace fqcli {

/// A GGUF value as JSON: numbers, bools, strings; arrays in full.
inline nlohmann::json to_json(const fq::gguf::value& v) {
  using fq::gguf::value_type;
  auto scalar = [](const fq::gguf::value& x, value_type t, std::uint64_t i) -> nlohmann::json {
    switch (t) {
      case value_type::f32:
        return x.is_array() ? *x.at<float>(i) : *x.get<float>();
      case value_type::f64:
        return x.is_array() ? *x.at<double>(i) : *x.get<double>();
      case value_type::boolean:
        return x.is_array() ? *x.at<bool>(i) : *x.get<bool>();
      case value_type::u64:
        return x.is_array() ? *x.at<std::uint64_t>(i) : *x.get<std::uint64_t>();
      case value_type::string:
        return std::string(x.is_array() ? *x.string_at(i) : *x.get_string());
      default:
        return x.is_array() ? *x.integer_at(i) : *x.get_integer();
    }
  };
  if (!v.is_array()) return scalar(v, v.type(), 0);
  auto a = nlohmann::json::array();
  for (std::uint64_t i = 0; i < v.size(); ++i) a.push_back(scalar(v, v.element_type(), i));
  return a;
}

/// JSON text; byte strings that are not UTF-8 are shown with U+FFFD rather than refused.
inline std::string dump(const nlohmann::json& j, int indent = 2) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

/// Writes `text` to `path` atomically.
inline void write_text_file(const std::filesystem::path& path, const std::string& text) {
  fq::atomic_file f(path);
  f.write(text);
  f.commit();
}

}  // namespace fqcli

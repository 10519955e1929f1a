// SPDX-License-Identifier: MIT
// fakequant inspect FILE [--json]
#include <fmt/core.h>

#include <fakequant/gguf.hpp>

#include "cli.hpp"
#include "json_util.hpp"

namespace fqcli {
namespace {

std::string shape_text(std::span<const std::uint64_t> shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A value in one line: long arrays show their first items and how many more there are; floats
// in their shortest round-trip form.
std::string value_text(const fq::gguf::value& v) {
  constexpr std::uint64_t shown = 8;
  constexpr std::size_t max_string = 120;
  using fq::gguf::value_type;
  auto item = [&](value_type t, std::uint64_t i) -> std::string {
    const bool arr = v.is_array();
    switch (t) {
      case value_type::f32:
        return fmt::format("{}", arr ? *v.at<float>(i) : *v.get<float>());
      case value_type::f64:
        return fmt::format("{}", arr ? *v.at<double>(i) : *v.get<double>());
      case value_type::string: {
        std::string s(arr ? *v.string_at(i) : *v.get_string());
        if (s.size() > max_string) s = s.substr(0, max_string) + "…";
        for (auto& c : s)
          if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        return "\"" + s + "\"";
      }
      case value_type::boolean:
        return (arr ? *v.at<bool>(i) : *v.get<bool>()) ? "true" : "false";
      case value_type::u64:
        return std::to_string(arr ? *v.at<std::uint64_t>(i) : *v.get<std::uint64_t>());
      default:
        return std::to_string(arr ? *v.integer_at(i) : *v.get_integer());
    }
  };
  if (!v.is_array()) return item(v.type(), 0);
  std::string s = "[";
  for (std::uint64_t i = 0; i < std::min(v.size(), shown); ++i)
    s += (i ? ", " : "") + item(v.element_type(), i);
  if (v.size() > shown) s += fmt::format(", … ({} more)", v.size() - shown);
  return s + "]";
}

void print_text(const fq::gguf::file& f) {
  fmt::print(
      "{}: GGUF v{}, alignment {}, {} metadata entries, {} tensors, data at byte {}, "
      "file size {}\n",
      f.path(), f.version(), f.alignment(), f.metadata().size(), f.tensors().size(),
      f.data_offset(), f.file_size());
  fmt::print("metadata:\n");
  for (const auto& e : f.metadata()) {
    std::string type(fq::gguf::value_type_name(e.value.type()));
    if (e.value.is_array())
      type = fmt::format("array[{}] of {}", fq::gguf::value_type_name(e.value.element_type()),
                         e.value.size());
    fmt::print("  {} ({}) = {}\n", e.key, type, value_text(e.value));
  }
  if (!f.tensors().empty()) {
    fmt::print("tensors:\n  {:<40} {:<8} {:<24} {:>14} {:>14}\n", "name", "type", "shape", "offset",
               "bytes");
    for (const auto& t : f.tensors())
      fmt::print("  {:<40} {:<8} {:<24} {:>14} {:>14}\n", t.name, fq::gguf::type_name(t.type),
                 shape_text(t.shape()), t.offset, t.bytes);
  }
  for (const auto& g : f.gaps())
    fmt::print(
        "gap: {} bytes not covered by any tensor at byte {} (allowed by the GGUF spec; "
        "ggml refuses such files)\n",
        g.bytes, g.file_offset);
}

nlohmann::json inspect_json(const fq::gguf::file& f) {
  nlohmann::json j;
  j["file"] = f.path();
  j["version"] = f.version();
  j["alignment"] = f.alignment();
  j["file_size"] = f.file_size();
  j["data_offset"] = f.data_offset();
  auto& md = j["metadata"] = nlohmann::json::object();
  for (const auto& e : f.metadata()) md[std::string(e.key)] = to_json(e.value);
  auto& ts = j["tensors"] = nlohmann::json::array();
  for (const auto& t : f.tensors())
    ts.push_back({{"name", t.name},
                  {"type", fq::gguf::type_name(t.type)},
                  {"shape", std::vector<std::uint64_t>(t.shape().begin(), t.shape().end())},
                  {"offset", t.offset},
                  {"file_offset", t.file_offset},
                  {"bytes", t.bytes}});
  auto& gs = j["gaps"] = nlohmann::json::array();
  for (const auto& g : f.gaps()) gs.push_back({{"file_offset", g.file_offset}, {"bytes", g.bytes}});
  return j;
}

}  // namespace

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show a GGUF file's header, metadata and tensors");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  cmd->add_option("FILE", *path, "GGUF file")->required();
  cmd->add_flag("--json", *json, "Print JSON (metadata arrays complete) instead of text");
  cmd->callback([=] {
    const auto f = fq::gguf::file::open(*path);
    if (*json) {
      fmt::print("{}", dump(inspect_json(f)));
    } else {
      print_text(f);
    }
  });
}

}  // namespace fqcli

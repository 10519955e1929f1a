// SPDX-License-Identifier: MIT
// The ggml tensor-type table and the GGUF metadata value types.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fq::gguf {

/// ggml tensor type ids as stored in GGUF tensor infos (ggml.h, GGML_TYPE_COUNT = 43).
enum class ggml_type : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q4_2 = 4,
  q4_3 = 5,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  q4_0_4_4 = 31,
  q4_0_4_8 = 32,
  q4_0_8_8 = 33,
  tq1_0 = 34,
  tq2_0 = 35,
  iq4_nl_4_4 = 36,
  iq4_nl_4_8 = 37,
  iq4_nl_8_8 = 38,
  mxfp4 = 39,
  nvfp4 = 40,
  q1_0 = 41,
  q2_0 = 42,
};

inline constexpr std::uint32_t ggml_type_count = 43;

/// Block geometry of one tensor type. `block_size == 0` marks an id that was removed from ggml
/// (or never defined); files using it are refused, as ggml refuses them.
struct type_traits {
  std::string_view name;
  std::uint32_t block_size;  ///< elements per block
  std::uint32_t type_size;   ///< bytes per block
};

namespace detail {
inline constexpr std::array<type_traits, ggml_type_count> type_table{{
    {"F32", 1, 4},        {"F16", 1, 2},        {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
    {"Q4_2", 0, 0},       {"Q4_3", 0, 0},       {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},     {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},   {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74},  {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110},  {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},        {"I32", 1, 4},        {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},   {"BF16", 1, 2},       {"Q4_0_4_4", 0, 0},
    {"Q4_0_4_8", 0, 0},   {"Q4_0_8_8", 0, 0},   {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
    {"IQ4_NL_4_4", 0, 0}, {"IQ4_NL_4_8", 0, 0}, {"IQ4_NL_8_8", 0, 0}, {"MXFP4", 32, 17},
    {"NVFP4", 64, 36},    {"Q1_0", 128, 18},    {"Q2_0", 64, 18},
}};
}  // namespace detail

/// Traits of a type id, or nullopt for ids outside the table.
constexpr std::optional<type_traits> traits_of(std::uint32_t id) noexcept {
  if (id >= ggml_type_count) return std::nullopt;
  return detail::type_table[id];
}
constexpr type_traits traits_of(ggml_type t) noexcept {
  return detail::type_table[static_cast<std::uint32_t>(t)];
}
/// True for ids that files may use today.
constexpr bool is_valid_type(std::uint32_t id) noexcept {
  return id < ggml_type_count && detail::type_table[id].block_size != 0;
}
constexpr std::string_view type_name(ggml_type t) noexcept { return traits_of(t).name; }

/// Type by its ggml name ("F32", "q8_0", case-insensitive); nullopt when unknown or removed.
constexpr std::optional<ggml_type> type_from_name(std::string_view name) noexcept {
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  for (std::uint32_t id = 0; id < ggml_type_count; ++id) {
    const auto& t = detail::type_table[id];
    if (t.block_size == 0 || t.name.size() != name.size()) continue;
    bool eq = true;
    for (std::size_t i = 0; i < name.size() && eq; ++i) eq = lower(t.name[i]) == lower(name[i]);
    if (eq) return static_cast<ggml_type>(id);
  }
  return std::nullopt;
}

/// GGUF metadata value types (gguf.h).
enum class value_type : std::uint32_t {
  u8 = 0,
  i8 = 1,
  u16 = 2,
  i16 = 3,
  u32 = 4,
  i32 = 5,
  f32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  u64 = 10,
  i64 = 11,
  f64 = 12,
};
inline constexpr std::uint32_t value_type_count = 13;

constexpr std::string_view value_type_name(value_type t) noexcept {
  constexpr std::array<std::string_view, value_type_count> names{
      "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
      "bool", "string", "array", "u64", "i64", "f64"};
  const auto id = static_cast<std::uint32_t>(t);
  return id < value_type_count ? names[id] : std::string_view{"invalid"};
}

/// Byte size of a fixed-size value type; 0 for string and array.
constexpr std::size_t value_type_size(value_type t) noexcept {
  switch (t) {
    case value_type::u8:
    case value_type::i8:
    case value_type::boolean:
      return 1;
    case value_type::u16:
    case value_type::i16:
      return 2;
    case value_type::u32:
    case value_type::i32:
    case value_type::f32:
      return 4;
    case value_type::u64:
    case value_type::i64:
    case value_type::f64:
      return 8;
    case value_type::string:
    case value_type::array:
      return 0;
  }
  return 0;
}

}  // namespace fq::gguf

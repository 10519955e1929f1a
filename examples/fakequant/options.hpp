// SPDX-License-Identifier: MIT
// The experiment options users spell as words (format, rounding, overflow, scale, store, backend,
// report language), each parsed by one function where the input enters — quantize's, test1's and
// sweep's command lines and sweep's experiments file — so the pipeline only sees typed values. The
// names are a contract (flags, JSON values, reports): each list is written once here and serves
// the command line's checks, the parsers and the reports.
#pragma once

#include <CLI/CLI.hpp>
#include <fakequant/error.hpp>
#include <fakequant/format/float_format.hpp>
#include <fakequant/format/scaling.hpp>
#include <fakequant/quantize.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fqcli {

/// Where test1 and sweep evaluate the models.
enum class backend { builtin, llama_cpp };
/// The language of the reports.
enum class language { en, zh_tw };

template <class E>
struct named {
  std::string_view name;
  E value;
};

inline constexpr std::string_view rounding_names[] = {"nearest-even", "toward-zero", "nearest-away",
                                                      "stochastic"};
inline constexpr std::string_view overflow_names[] = {"saturate", "saturate-inf", "ieee"};
inline constexpr named<fq::store_policy> store_names[] = {{"same", fq::store_policy::same},
                                                          {"f32", fq::store_policy::f32}};
inline constexpr named<backend> backend_names[] = {{"builtin", backend::builtin},
                                                   {"llama.cpp", backend::llama_cpp}};
inline constexpr named<language> language_names[] = {{"en", language::en},
                                                     {"zh-TW", language::zh_tw}};

namespace detail_options {

inline std::string_view name_part(std::string_view n) { return n; }
template <class E>
std::string_view name_part(const named<E>& n) {
  return n.name;
}

// "a, b or c", as the error messages list the names.
template <class T, std::size_t N>
std::string one_of(const T (&names)[N]) {
  std::string s;
  for (std::size_t i = 0; i < N; ++i)
    s += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(name_part(names[i]));
  return s;
}

template <class E, std::size_t N>
E parse_named(const named<E> (&names)[N], std::string_view s, const char* what) {
  for (const auto& n : names)
    if (n.name == s) return n.value;
  throw fq::error(fq::errc::invalid_argument, "",
                  std::string(what) + " '" + std::string(s) + "' is not " + one_of(names));
}

template <class E, std::size_t N>
std::string_view name_of(const named<E> (&names)[N], E v) {
  for (const auto& n : names)
    if (n.value == v) return n.name;
  return {};
}

}  // namespace detail_options

/// The command line's check that a value is one of `names` (CLI11's usage error, exit status 2).
template <class T, std::size_t N>
CLI::IsMember member_of(const T (&names)[N]) {
  std::vector<std::string> v;
  for (const auto& n : names) v.emplace_back(detail_options::name_part(n));
  return CLI::IsMember(v);
}

/// The parsers: each throws fq::error(invalid_argument) with no file, naming the value and what
/// is accepted; callers that know the file or experiment put it in front.
inline fq::format::float_format parse_format(std::string_view s) {
  return fq::format::format_from_name(s);
}
inline fq::format::rounding parse_rounding(std::string_view s) {
  if (const auto r = fq::format::rounding_from_name(s)) return *r;
  throw fq::error(
      fq::errc::invalid_argument, "",
      "rounding '" + std::string(s) + "' is not " + detail_options::one_of(rounding_names));
}
/// Empty: nullopt, the format's default.
inline std::optional<fq::format::overflow> parse_overflow(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (const auto o = fq::format::overflow_from_name(s)) return *o;
  throw fq::error(
      fq::errc::invalid_argument, "",
      "overflow '" + std::string(s) + "' is not " + detail_options::one_of(overflow_names));
}
inline fq::format::scaling parse_scale(std::string_view s) {
  return fq::format::scaling_from_name(s);
}
inline fq::store_policy parse_store(std::string_view s) {
  return detail_options::parse_named(store_names, s, "store");
}
inline backend parse_backend(std::string_view s) {
  return detail_options::parse_named(backend_names, s, "backend");
}
inline language parse_language(std::string_view s) {
  return detail_options::parse_named(language_names, s, "language");
}

/// The names users see, as they typed them.
inline std::string_view name_of(fq::format::rounding r) {
  for (const auto n : rounding_names)
    if (fq::format::rounding_from_name(n) == r) return n;
  return {};
}
inline std::string_view name_of(fq::store_policy s) {
  return detail_options::name_of(store_names, s);
}
inline std::string_view name_of(backend b) { return detail_options::name_of(backend_names, b); }

}  // namespace fqcli

// SPDX-License-Identifier: MIT
// The numerical analysis of two GGUF files: do they have the same metadata and structure, and how
// do their tensors differ (paired statistics and distributions per tensor). What `fakequant diff`
// prints and writes as numerical_analysis.json.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../gguf/blocks.hpp"
#include "../gguf/file.hpp"
#include "../gguf/names.hpp"
#include "distribution.hpp"
#include "paired.hpp"

namespace fq::stats {

/// Options of diff_files.
struct diff_options {
  std::string tensors;    ///< comma-separated globs of tensor names (gguf/names.hpp); empty: all
  double epsilon = 1e-8;  ///< ε of the relative difference
  bool all = false;       ///< also report tensors whose bytes are identical
  unsigned threads = 0;   ///< threads of the paired reducer (0: all cores)
  std::size_t bins = 64;  ///< histogram bins
  std::size_t samples = 4000;  ///< (value, relative difference) points kept per tensor
  std::optional<kernel_table>
      kernels{};  ///< the paired reducer's (stats/dispatch.hpp); unset: best
};

/// The comparison of one tensor present in both files with the same element count.
struct tensor_diff {
  std::string name;
  std::string type_a, type_b;
  std::vector<std::uint64_t> shape;
  bool identical_bytes = false;
  paired_stats paired;
  distribution_comparison distribution;
  /// Up to diff_options::samples evenly spaced (a, |a-b| / (|a| + ε)) points, for pictures.
  std::vector<std::pair<float, double>> samples;
};

/// Everything diff_files finds.
struct diff_report {
  std::string a, b;
  double epsilon = 1e-8;
  bool metadata_identical = true;
  bool structure_identical = true;
  std::vector<std::string> metadata_differences;   ///< one readable line each
  std::vector<std::string> structure_differences;  ///< one readable line each
  std::vector<tensor_diff> tensors;
};

namespace detail {

inline std::string shape_string(std::span<const std::uint64_t> s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

/// All of a tensor's values as float32 (decoded block by block, in row-sized pieces).
inline std::vector<float> decode_tensor(const gguf::file& f, const gguf::tensor_info& t) {
  if (!gguf::can_decode(t.type))
    throw error(errc::unsupported, f.path(), t.file_offset,
                "tensor '" + std::string(t.name) + "' has type " +
                    std::string(gguf::type_name(t.type)) + ", which fakequant cannot decode");
  std::vector<float> v(t.elements);
  gguf::decode(t.type, f.tensor_data(t), 0, v);
  return v;
}

inline void compare_metadata(const gguf::file& a, const gguf::file& b, diff_report& r) {
  for (const auto& e : a.metadata()) {
    const auto* o = b.find_entry(e.key);
    if (!o) {
      r.metadata_differences.push_back("key '" + std::string(e.key) + "' only in A");
    } else if (!(o->value == e.value)) {
      r.metadata_differences.push_back("key '" + std::string(e.key) + "' has another value in B");
    }
  }
  for (const auto& e : b.metadata())
    if (!a.find_entry(e.key))
      r.metadata_differences.push_back("key '" + std::string(e.key) + "' only in B");
  if (r.metadata_differences.empty() && a.metadata().size() == b.metadata().size())
    for (std::size_t i = 0; i < a.metadata().size(); ++i)
      if (a.metadata()[i].key != b.metadata()[i].key) {
        r.metadata_differences.push_back("metadata keys are in another order from key '" +
                                         std::string(a.metadata()[i].key) + "'");
        break;
      }
  r.metadata_identical = r.metadata_differences.empty();
}

inline void compare_structure(const gguf::file& a, const gguf::file& b, diff_report& r) {
  auto& d = r.structure_differences;
  for (const auto& t : a.tensors()) {
    const auto* o = b.find_tensor(t.name);
    const std::string n(t.name);
    if (!o) {
      d.push_back("tensor '" + n + "' only in A");
      continue;
    }
    if (o->type != t.type)
      d.push_back("tensor '" + n + "' is " + std::string(gguf::type_name(t.type)) + " in A, " +
                  std::string(gguf::type_name(o->type)) + " in B");
    if (!std::ranges::equal(o->shape(), t.shape()))
      d.push_back("tensor '" + n + "' has shape " + shape_string(t.shape()) + " in A, " +
                  shape_string(o->shape()) + " in B");
  }
  for (const auto& t : b.tensors())
    if (!a.find_tensor(t.name)) d.push_back("tensor '" + std::string(t.name) + "' only in B");
  if (d.empty() && a.tensors().size() == b.tensors().size())
    for (std::size_t i = 0; i < a.tensors().size(); ++i)
      if (a.tensors()[i].name != b.tensors()[i].name) {
        d.push_back("tensors are in another order from '" + std::string(a.tensors()[i].name) + "'");
        break;
      }
  r.structure_identical = d.empty();
}

/// Whether two tensors' bytes are equal (through the maps: measured faster here than pread into
/// buffers, 0.3 s against 0.55 s for two 2.2 GB files in the page cache).
inline bool same_bytes(const gguf::file& a, const gguf::tensor_info& ta, const gguf::file& b,
                       const gguf::tensor_info& tb) {
  const auto da = a.tensor_data(ta), db = b.tensor_data(tb);
  return da.size() == db.size() &&
         (da.empty() || std::memcmp(da.data(), db.data(), da.size()) == 0);
}

}  // namespace detail

/// Compares two opened GGUF files: metadata (keys, values, order), structure (tensor names,
/// types, shapes, order), and every tensor selected by `o.tensors` that exists in both with the
/// same number of elements — those whose bytes differ, or all with `o.all`. Types may differ
/// (each side is decoded to float32). Throws fq::error for a tensor type it cannot decode.
///
///     auto r = fq::stats::diff_files(gguf::file::open("orig.gguf"), gguf::file::open("fq.gguf"));
inline diff_report diff_files(const gguf::file& a, const gguf::file& b,
                              const diff_options& o = {}) {
  diff_report r;
  r.a = a.path(), r.b = b.path(), r.epsilon = o.epsilon;
  detail::compare_metadata(a, b, r);
  detail::compare_structure(a, b, r);
  const auto patterns = gguf::split_patterns(o.tensors);
  const auto selected = [&](std::string_view name) {
    return patterns.empty() ||
           std::ranges::any_of(patterns, [&](const auto& p) { return gguf::glob_match(p, name); });
  };
  for (const auto& ta : a.tensors()) {
    if (!selected(ta.name)) continue;
    const auto* tb = b.find_tensor(ta.name);
    if (!tb || tb->elements != ta.elements) continue;
    const bool same = ta.type == tb->type && detail::same_bytes(a, ta, b, *tb);
    if (same && !o.all) continue;
    tensor_diff t;
    t.name = std::string(ta.name);
    t.type_a = std::string(gguf::type_name(ta.type));
    t.type_b = std::string(gguf::type_name(tb->type));
    t.shape.assign(ta.shape().begin(), ta.shape().end());
    t.identical_bytes = same;
    std::vector<float> va = detail::decode_tensor(a, ta), vb = detail::decode_tensor(b, *tb);
    t.paired = compare(va, vb, {.epsilon = o.epsilon, .threads = o.threads, .kernels = o.kernels});
    const std::size_t step =
        std::max<std::size_t>(1, va.size() / std::max<std::size_t>(1, o.samples));
    for (std::size_t i = 0; i < va.size() && t.samples.size() < o.samples; i += step)
      if (std::isfinite(va[i]) && std::isfinite(vb[i]))
        t.samples.emplace_back(va[i], std::fabs(static_cast<double>(va[i]) - vb[i]) /
                                          (std::fabs(static_cast<double>(va[i])) + o.epsilon));
    // Last, as it sorts the decoded data in place.
    t.distribution = compare_distributions(std::move(va), std::move(vb), o.bins);
    r.tensors.push_back(std::move(t));
  }
  return r;
}

}  // namespace fq::stats

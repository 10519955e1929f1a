// SPDX-License-Identifier: MIT
// Fake quantization of chosen tensors of a GGUF file: each value rounded to a narrow format and
// stored back, so the file keeps its structure (F32 tensors stay F32; F16/BF16 keep their type when
// every rounded value is exact in it; block-quantized tensors are decoded and stored as F32).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "equal_bytes.hpp"
#include "error.hpp"
#include "format/dispatch.hpp"
#include "format/float_format.hpp"
#include "format/kernels.hpp"
#include "format/scaling.hpp"
#include "gguf/blocks.hpp"
#include "gguf/file.hpp"
#include "gguf/names.hpp"
#include "gguf/writer.hpp"
#include "thread_pool.hpp"

namespace fq {

enum class store_policy { same, f32 };

struct quantize_options {
  format::float_format format = format::bf16;
  format::round_options rounding;  ///< set rounding.overflow from format.default_overflow()
  format::scaling scale;           ///< none, per tensor, or MX blocks along each row
  store_policy store = store_policy::same;
  /// The rounding kernels (format/dispatch.hpp); unset: best_kernels(), this CPU's best or
  /// FQ_FORCE_ARCH's, chosen when the call runs. Every kernel gives the same bits.
  std::optional<format::kernel_table> kernels{};
  /// Threads for tensors of at least 2^20 values (0: all cores); results do not depend on it.
  std::size_t threads = 0;
};

/// What happened to one tensor.
struct quantized_tensor {
  std::string name;
  gguf::ggml_type type_in, type_out;
  std::uint64_t elements = 0, changed = 0, nan = 0;
  std::uint64_t nan_in = 0;     ///< NaN inputs (a format without a NaN code cannot encode them)
  format::scale_summary scale;  ///< the scales used (scale_mode::tensor, block)
  double max_rel_change = 0;    ///< max |new − old| / |old| over nonzero old values
  std::vector<float> values;    ///< the rounded values (F32), kept until written
};

namespace detail {
// The unscaled rounding of one span: by `kernels` (over `pool`'s threads when given and the span
// is large), or by the scalar reference round_to when `kernels` is null (verification).
inline void round_span(const format::kernel_table* kernels, thread_pool* pool,
                       const format::float_format& f, std::span<const float> in,
                       std::span<float> out, std::uint64_t first,
                       const format::round_options& opt) {
  if (kernels) return format::fake_quantize(*kernels, f, opt, in, out, first, pool);
  for (std::size_t i = 0; i < in.size(); ++i) out[i] = format::round_to(f, in[i], opt, first + i);
}

// Rounds a whole tensor (rows of ne[0] elements) under opt's scaling.
inline format::scale_summary round_tensor(const gguf::tensor_info& t, std::span<const float> in,
                                          std::span<float> out, const quantize_options& opt,
                                          const format::kernel_table* kernels,
                                          thread_pool* pool = nullptr) {
  return format::fake_quantize_scaled(opt.format, in, out, opt.rounding, opt.scale,
                                      t.n_dims == 0 ? in.size() : t.ne[0],
                                      [&](std::span<const float> a, std::span<float> b,
                                          std::uint64_t first, const format::round_options& o) {
                                        round_span(kernels, pool, opt.format, a, b, first, o);
                                      });
}
}  // namespace detail

/// The tensors of `f` matched by `patterns` (exact names or globs), in file order; an error naming
/// the closest names for a pattern that matches nothing.
inline std::vector<const gguf::tensor_info*> match_tensors(
    const gguf::file& f, const std::vector<std::string>& patterns) {
  if (patterns.empty()) throw error(errc::invalid_argument, "", "no tensor pattern given");
  std::vector<const gguf::tensor_info*> out;
  std::vector<std::string_view> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  for (const auto& p : patterns) {
    bool any = false;
    for (const auto& t : f.tensors())
      if (gguf::glob_match(p, t.name)) any = true;
    if (!any) {
      std::string close;
      for (const auto& n : gguf::closest_names(p, names)) close += (close.empty() ? "" : ", ") + n;
      throw error(
          errc::not_found, f.path(),
          "no tensor matches '" + p + "'" + (close.empty() ? "" : " (closest: " + close + ")"));
    }
  }
  for (const auto& t : f.tensors())
    for (const auto& p : patterns)
      if (gguf::glob_match(p, t.name)) {
        out.push_back(&t);
        break;
      }
  return out;
}

/// Rounds the matched tensors and registers the replacements on `b` (made from `f`). Returns one
/// record per tensor. Throws when a tensor cannot be stored as asked.
inline std::vector<quantized_tensor> fake_quantize_tensors(const gguf::file& f, gguf::builder& b,
                                                           const std::vector<std::string>& patterns,
                                                           const quantize_options& opt) {
  format::check_options(opt.format, opt.rounding);
  const format::kernel_table kernels = opt.kernels ? *opt.kernels : format::best_kernels();
  std::vector<quantized_tensor> out;
  std::unique_ptr<thread_pool> pool;  // made for the first large tensor
  for (const auto* t : match_tensors(f, patterns)) {
    if (!gguf::can_decode(t->type))
      throw error(errc::unsupported, f.path(), t->info_offset,
                  "tensor '" + std::string(t->name) + "' has type " +
                      std::string(gguf::type_name(t->type)) + ", which cannot be decoded");
    const bool float_type = t->type == gguf::ggml_type::f32 || t->type == gguf::ggml_type::f16 ||
                            t->type == gguf::ggml_type::bf16;
    if (!float_type && opt.store == store_policy::same)
      throw error(errc::invalid_argument, f.path(),
                  "tensor '" + std::string(t->name) + "' is " +
                      std::string(gguf::type_name(t->type)) +
                      ": block-quantized tensors need --store f32");
    quantized_tensor q;
    q.name = std::string(t->name);
    q.type_in = t->type;
    q.elements = t->elements;
    std::vector<float> orig(t->elements);
    gguf::decode(t->type, f.tensor_data(*t), 0, orig);
    q.values.resize(orig.size());
    if (!pool && opt.threads != 1 && orig.size() >= (std::size_t{1} << 20))
      pool = std::make_unique<thread_pool>(opt.threads);
    q.scale = detail::round_tensor(*t, orig, q.values, opt, &kernels, pool.get());
    for (std::size_t i = 0; i < orig.size(); ++i) {
      const float v = q.values[i];
      if (std::isnan(orig[i])) ++q.nan_in;
      if (std::isnan(v)) ++q.nan;
      const bool same = std::memcmp(&v, &orig[i], 4) == 0 || (std::isnan(v) && std::isnan(orig[i]));
      if (!same) {
        ++q.changed;
        if (orig[i] != 0.0f && std::isfinite(orig[i]) && std::isfinite(v))
          q.max_rel_change = std::max(
              q.max_rel_change, std::fabs(static_cast<double>(v) - orig[i]) / std::fabs(orig[i]));
      }
    }
    q.type_out = opt.store == store_policy::f32 ? gguf::ggml_type::f32 : t->type;
    const std::vector<std::uint64_t> shape(t->shape().begin(), t->shape().end());
    if (q.type_out == gguf::ggml_type::f32) {
      // The builder owns its copy, so the replacement outlives the records returned here.
      auto keep = std::make_shared<const std::vector<float>>(q.values);
      b.replace_tensor(t->name, gguf::ggml_type::f32, shape,
                       gguf::tensor_source::produced(
                           keep->size() * 4, [keep](std::uint64_t off, std::span<std::byte> dst) {
                             std::memcpy(dst.data(),
                                         reinterpret_cast<const std::byte*>(keep->data()) + off,
                                         dst.size());
                           }));
      out.push_back(std::move(q));
      continue;
    }
    // F16/BF16 kept in their own type: only when every rounded value is exact in it.
    const auto& own = q.type_out == gguf::ggml_type::f16 ? format::fp16 : format::bf16;
    format::round_options exact;
    exact.overflow = format::overflow::ieee;
    std::vector<float> again(q.values.size());
    format::fake_quantize(kernels, own, exact, q.values, again, 0, pool.get());
    std::size_t inexact = 0;
    for (std::size_t i = 0; i < again.size(); ++i)
      if (!std::isnan(q.values[i]) && again[i] != q.values[i]) ++inexact;
    if (inexact)
      throw error(errc::invalid_argument, f.path(),
                  "tensor '" + q.name + "': " + std::to_string(inexact) +
                      " rounded values are not exact in " +
                      std::string(gguf::type_name(q.type_out)) + "; use --store f32");
    auto bits = std::make_shared<std::vector<std::uint16_t>>(q.values.size());
    for (std::size_t i = 0; i < q.values.size(); ++i) {
      if (q.type_out == gguf::ggml_type::f16) {
        (*bits)[i] = format::to_f16_bits(q.values[i]);
      } else {
        std::uint32_t u;
        std::memcpy(&u, &q.values[i], 4);
        (*bits)[i] = static_cast<std::uint16_t>(u >> 16);
      }
    }
    b.replace_tensor(t->name, q.type_out, shape,
                     gguf::tensor_source::produced(
                         bits->size() * 2, [bits](std::uint64_t off, std::span<std::byte> dst) {
                           std::memcpy(dst.data(),
                                       reinterpret_cast<const std::byte*>(bits->data()) + off,
                                       dst.size());
                         }));
    out.push_back(std::move(q));
  }
  return out;
}

/// Verifies a fake-quantized file against its original: same metadata; same tensor names, order,
/// types and shapes (a target may have become F32 under store_policy::f32); every untouched tensor
/// byte-identical; every target value the format's rounding of the original; no NaN or Inf in the
/// targets. Returns one readable line per problem (empty: verified).
inline std::vector<std::string> verify_fake_quantized(const gguf::file& original,
                                                      const gguf::file& fake,
                                                      const std::vector<std::string>& patterns,
                                                      const quantize_options& opt) {
  std::vector<std::string> problems;
  const auto& ma = original.metadata();
  const auto& mb = fake.metadata();
  if (ma.size() != mb.size()) problems.push_back("the number of metadata entries differs");
  for (std::size_t i = 0; i < std::min(ma.size(), mb.size()); ++i)
    if (ma[i].key != mb[i].key || !(ma[i].value == mb[i].value))
      problems.push_back("metadata entry '" + std::string(ma[i].key) + "' differs");
  const auto& ta = original.tensors();
  const auto& tb = fake.tensors();
  if (ta.size() != tb.size()) problems.push_back("the number of tensors differs");
  auto is_target = [&](std::string_view name) {
    for (const auto& p : patterns)
      if (gguf::glob_match(p, name)) return true;
    return false;
  };
  thread_pool pool(opt.threads);  // for comparing large untouched tensors
  for (std::size_t i = 0; i < std::min(ta.size(), tb.size()); ++i) {
    const auto& a = ta[i];
    const auto& b = tb[i];
    const std::string name(a.name);
    if (a.name != b.name) {
      problems.push_back("tensor " + std::to_string(i) + " is '" + std::string(b.name) +
                         "', expected '" + name + "'");
      continue;
    }
    const bool target = is_target(a.name);
    const bool type_ok = a.type == b.type || (target && opt.store == store_policy::f32 &&
                                              b.type == gguf::ggml_type::f32);
    if (!type_ok || a.n_dims != b.n_dims || a.ne != b.ne) {
      problems.push_back("tensor '" + name + "' changed type or shape");
      continue;
    }
    if (!target) {
      const auto da = original.tensor_data(a), db = fake.tensor_data(b);
      if (!equal_bytes(da, db, &pool))
        problems.push_back("untouched tensor '" + name + "' differs from the original");
      continue;
    }
    std::vector<float> va(a.elements), vb(b.elements), want(a.elements);
    gguf::decode(a.type, original.tensor_data(a), 0, va);
    gguf::decode(b.type, fake.tensor_data(b), 0, vb);
    detail::round_tensor(a, va, want, opt, nullptr);  // the scalar reference, independently
    for (std::size_t k = 0; k < va.size(); ++k) {
      if (!std::isfinite(vb[k])) {
        problems.push_back("tensor '" + name + "' holds NaN or Inf (element " + std::to_string(k) +
                           ")");
        break;
      }
      if (std::memcmp(&want[k], &vb[k], 4) != 0) {
        problems.push_back("tensor '" + name + "' element " + std::to_string(k) +
                           " is not the format's rounding of the original");
        break;
      }
    }
  }
  return problems;
}

}  // namespace fq

// SPDX-License-Identifier: MIT
// Little-endian loads and stores through memcpy (never a pointer cast into a file buffer: that is
// the misaligned read UBSan finds in other GGUF parsers), and checked 64-bit arithmetic.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

namespace fq::detail {

static_assert(std::endian::native == std::endian::little,
              "fakequant reads and writes little-endian GGUF on little-endian hosts only");

template <class T>
inline T load_le(const std::byte* p) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
inline void store_le(std::byte* p, T v) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  std::memcpy(p, &v, sizeof(T));
}

/// a*b, or nullopt when it does not fit 64 bits.
inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// a+b, or nullopt when it does not fit 64 bits.
inline std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}
/// x rounded up to a multiple of the power of two `align`, or nullopt on overflow.
inline std::optional<std::uint64_t> checked_align_up(std::uint64_t x,
                                                     std::uint64_t align) noexcept {
  auto r = checked_add(x, align - 1);
  if (!r) return std::nullopt;
  return *r & ~(align - 1);
}

}  // namespace fq::detail

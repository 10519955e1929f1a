// SPDX-License-Identifier: MIT
// Byte-for-byte comparison of large spans on several threads: one core's memcmp reads about
// 14 GB/s, so comparing two 2 GB files takes 0.3 s on one thread and about half that on two.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <span>

#include "thread_pool.hpp"

namespace fq {

/// Whether `a` and `b` hold the same bytes; large spans are split over `pool`'s threads (null: the
/// calling thread alone). Stops early once a difference is found.
inline bool equal_bytes(std::span<const std::byte> a, std::span<const std::byte> b,
                        thread_pool* pool = nullptr) {
  if (a.size() != b.size()) return false;
  constexpr std::size_t piece = std::size_t{4} << 20;
  const std::size_t pieces = (a.size() + piece - 1) / piece;
  if (!pool || pool->size() < 2 || pieces < 4)
    return a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0;
  std::atomic<bool> differ{false};
  pool->parallel_for(pieces, [&](std::size_t p0, std::size_t p1, std::size_t) {
    for (std::size_t p = p0; p < p1 && !differ.load(std::memory_order_relaxed); ++p) {
      const std::size_t at = p * piece, n = std::min(piece, a.size() - at);
      if (std::memcmp(a.data() + at, b.data() + at, n) != 0)
        differ.store(true, std::memory_order_relaxed);
    }
  });
  return !differ.load();
}

}  // namespace fq

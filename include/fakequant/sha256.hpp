// SPDX-License-Identifier: MIT
// SHA-256 (FIPS 180-4), for checking that a backup is identical to its original. On x86-64 CPUs
// with the SHA extensions the blocks go through them (about 4 times the portable code's speed,
// which decides how long hashing a 2.2 GB model takes next to copying it).
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define FQ_SHA256_SHANI 1
#else
#define FQ_SHA256_SHANI 0
#endif

namespace fq::detail {

#if FQ_SHA256_SHANI
/// SHA, SSSE3 and SSE4.1 instructions present (CPUID leaf 7 EBX bit 29, leaf 1 ECX bits 9, 19).
inline bool cpu_has_sha_ni() noexcept {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool sse = (c >> 9 & 1) && (c >> 19 & 1);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return sse && (b >> 29 & 1);
}

/// `n` 64-byte blocks through the SHA extensions; state in the usual order a…h.
__attribute__((target("sha,sse4.1,ssse3"))) inline void sha256_blocks_ni(
    std::uint32_t* state, const std::uint8_t* p, std::size_t n, const std::uint32_t* k) noexcept {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  // The instructions keep the state as ABEF and CDGH.
  __m128i t = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
  __m128i s1 =
      _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
  __m128i s0 = _mm_alignr_epi8(t, s1, 8);
  s1 = _mm_blend_epi16(s1, t, 0xF0);
  for (; n > 0; --n, p += 64) {
    const __m128i save0 = s0, save1 = s1;
    __m128i w[4];
    for (int g = 0; g < 16; ++g) {
      __m128i x;
      if (g < 4) {
        x = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)), bswap);
      } else {
        // w[i] = σ1(w[i−2]) + w[i−7] + σ0(w[i−15]) + w[i−16], four words at a time.
        const __m128i w16 = w[g & 3], w12 = w[(g + 1) & 3], w8 = w[(g + 2) & 3],
                      w4 = w[(g + 3) & 3];
        x = _mm_add_epi32(_mm_sha256msg1_epu32(w16, w12), _mm_alignr_epi8(w4, w8, 4));
        x = _mm_sha256msg2_epu32(x, w4);
      }
      w[g & 3] = x;
      __m128i m = _mm_add_epi32(x, _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * g)));
      s1 = _mm_sha256rnds2_epu32(s1, s0, m);
      m = _mm_shuffle_epi32(m, 0x0E);
      s0 = _mm_sha256rnds2_epu32(s0, s1, m);
    }
    s0 = _mm_add_epi32(s0, save0);
    s1 = _mm_add_epi32(s1, save1);
  }
  t = _mm_shuffle_epi32(s0, 0x1B);
  s1 = _mm_shuffle_epi32(s1, 0xB1);
  s0 = _mm_blend_epi16(t, s1, 0xF0);
  s1 = _mm_alignr_epi8(s1, t, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), s0);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), s1);
}
#endif

}  // namespace fq::detail

namespace fq {

/// Incremental SHA-256: update() with the data, then hex().
class sha256 {
 public:
  /// `use_cpu_extensions` false: the portable code only (tests compare the two).
  explicit sha256(bool use_cpu_extensions = true) noexcept {
#if FQ_SHA256_SHANI
    ni_ = use_cpu_extensions && detail::cpu_has_sha_ni();
#else
    (void)use_cpu_extensions;
#endif
  }

  void update(std::span<const std::byte> data) noexcept {
    length_ += data.size();
    std::size_t i = 0;
    while (i < data.size()) {
      if (fill_ == 0 && data.size() - i >= 64) {  // whole blocks straight from the input
        const std::size_t n = (data.size() - i) / 64;
        blocks(reinterpret_cast<const std::uint8_t*>(data.data() + i), n);
        i += 64 * n;
        continue;
      }
      block_[fill_++] = std::to_integer<std::uint8_t>(data[i++]);
      if (fill_ == 64) {
        blocks(block_, 1);
        fill_ = 0;
      }
    }
  }
  /// The digest in lowercase hex. Finalizes the hash: call it once, after the last update().
  std::string hex() {
    const std::uint64_t bits = length_ * 8;
    const std::byte one{0x80}, zero{0};
    update({&one, 1});
    while (fill_ != 56) update({&zero, 1});
    for (int i = 7; i >= 0; --i) {
      const std::byte b{static_cast<std::uint8_t>(bits >> (i * 8))};
      update({&b, 1});
    }
    length_ = bits / 8;  // padding is not message
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    for (auto w : h_)
      for (int i = 28; i >= 0; i -= 4) s += digits[(w >> i) & 15];
    return s;
  }

 private:
  static std::uint32_t rotr(std::uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }
  static constexpr std::uint32_t k[64] = {
      0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
      0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
      0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
      0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
      0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
      0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
      0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
      0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
      0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
      0xc67178f2};

  void blocks(const std::uint8_t* p, std::size_t n) noexcept {
#if FQ_SHA256_SHANI
    if (ni_) {
      detail::sha256_blocks_ni(h_.data(), p, n, k);
      return;
    }
#endif
    for (; n > 0; --n, p += 64) compress(p);
  }

  void compress(const std::uint8_t* block) noexcept {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = std::uint32_t{block[4 * i]} << 24 | std::uint32_t{block[4 * i + 1]} << 16 |
             std::uint32_t{block[4 * i + 2]} << 8 | block[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      const auto s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const auto s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    auto [a, b, c, d, e, f, g, h] = h_;
    for (int i = 0; i < 64; ++i) {
      const auto t1 =
          h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const auto t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    const std::uint32_t add[8] = {a, b, c, d, e, f, g, h};
    for (int i = 0; i < 8; ++i) h_[i] += add[i];
  }

  std::array<std::uint32_t, 8> h_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::uint8_t block_[64]{};
  std::size_t fill_ = 0;
  std::uint64_t length_ = 0;
  bool ni_ = false;
};

}  // namespace fq

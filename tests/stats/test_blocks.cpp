// SPDX-License-Identifier: MIT
// The ggml block decoders: hand-built blocks against an element-indexed formulation of each layout,
// every half-precision value, and the per-tensor checksums of gguf-py's reference dequantizers.
#include <cmath>
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/gguf/blocks.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <vector>

#include "support.hpp"

using fq::gguf::ggml_type;

namespace {

// binary16 by its definition, independently of the bit-shuffling decoder.
double half_by_definition(std::uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const double sign = s ? -1.0 : 1.0;
  if (e == 31) return m ? std::nan("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(m, -24);
  return sign * std::ldexp(1024 + m, e - 25);
}

std::uint16_t half_bits_of(float x) {  // exact for values the tests pick (representable)
  for (std::uint32_t h = 0; h < 65536; ++h)
    if (half_by_definition(static_cast<std::uint16_t>(h)) == x)
      return static_cast<std::uint16_t>(h);
  FAIL("not a half value");
  return 0;
}

std::vector<std::byte> random_bytes(std::size_t n, std::mt19937& rng) {
  std::vector<std::byte> b(n);
  for (auto& x : b) x = static_cast<std::byte>(rng() & 0xFF);
  return b;
}

void put_half(std::vector<std::byte>& b, std::size_t at, float v) {
  const auto h = half_bits_of(v);
  b[at] = static_cast<std::byte>(h & 0xFF);
  b[at + 1] = static_cast<std::byte>(h >> 8);
}

unsigned byte_at(const std::vector<std::byte>& b, std::size_t i) {
  return std::to_integer<unsigned>(b[i]);
}

// Scale and min of group g of a Q4_K/Q5_K block, read bit by bit from the 96-bit field: the
// low six bits of scales[g] / scales[g+4] for g < 4; otherwise nibbles of scales[g+4] plus the top
// two bits of scales[g-4] / scales[g].
std::pair<int, int> k_group_scale(const std::vector<std::byte>& b, std::size_t scales, int g) {
  auto s = [&](int i) {
    return static_cast<int>(byte_at(b, scales + static_cast<std::size_t>(i)));
  };
  if (g < 4) return {s(g) % 64, s(g + 4) % 64};
  return {s(g + 4) % 16 + (s(g - 4) / 64) * 16, s(g + 4) / 16 + (s(g) / 64) * 16};
}

float f(double x) { return static_cast<float>(x); }

}  // namespace

TEST_CASE("stats: half and bfloat16 decode every bit pattern exactly") {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float got = fq::gguf::detail::half_to_float(static_cast<std::uint16_t>(h));
    const double want = half_by_definition(static_cast<std::uint16_t>(h));
    if (std::isnan(want)) {
      REQUIRE(std::isnan(got));
      std::uint32_t bits;
      std::memcpy(&bits, &got, 4);
      REQUIRE((bits & 0x1FFFu) == 0);  // payload shifted, not invented
      REQUIRE((bits >> 31) == (h >> 15));
    } else {
      REQUIRE(static_cast<double>(got) == want);
      REQUIRE(std::signbit(got) == static_cast<bool>(h >> 15));
    }
    const float bf = fq::gguf::detail::bf16_to_float(static_cast<std::uint16_t>(h));
    std::uint32_t bits;
    std::memcpy(&bits, &bf, 4);
    REQUIRE(bits == (h << 16));
  }
}

TEST_CASE("stats: Q8_0 and Q4_0 blocks decode by their definition") {
  std::mt19937 rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    auto q8 = random_bytes(34 * 3, rng);
    auto q4 = random_bytes(18 * 3, rng);
    const float scales[3] = {0.5f, -0.0078125f, 3.0517578125e-05f};
    for (int blk = 0; blk < 3; ++blk) {
      put_half(q8, 34 * blk, scales[blk]);
      put_half(q4, 18 * blk, scales[blk]);
    }
    float o8[96], o4[96];
    fq::gguf::decode_blocks(ggml_type::q8_0, q8.data(), 3, o8);
    fq::gguf::decode_blocks(ggml_type::q4_0, q4.data(), 3, o4);
    for (int i = 0; i < 96; ++i) {
      const int blk = i / 32, k = i % 32;
      const int v8 = static_cast<std::int8_t>(byte_at(q8, 34 * blk + 2 + k));
      CHECK(o8[i] == f(static_cast<double>(scales[blk]) * v8));
      const unsigned byte = byte_at(q4, 18 * blk + 2 + k % 16);
      const int v4 = static_cast<int>(k < 16 ? byte % 16 : byte / 16) - 8;
      CHECK(o4[i] == f(static_cast<double>(scales[blk]) * v4));
    }
  }
}

TEST_CASE("stats: Q4_K, Q5_K and Q6_K super-blocks decode by their definition") {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 100; ++trial) {
    // Power-of-two super-scales keep every product exact, so the expected value in double is the
    // float32 result whatever the order of operations.
    const float d = 0.0078125f, dmin = -0.001953125f;
    auto k4 = random_bytes(144, rng);
    auto k5 = random_bytes(176, rng);
    auto k6 = random_bytes(210, rng);
    put_half(k4, 0, d);
    put_half(k4, 2, dmin);
    put_half(k5, 0, d);
    put_half(k5, 2, dmin);
    put_half(k6, 208, d);
    float o4[256], o5[256], o6[256];
    fq::gguf::decode_blocks(ggml_type::q4_k, k4.data(), 1, o4);
    fq::gguf::decode_blocks(ggml_type::q5_k, k5.data(), 1, o5);
    fq::gguf::decode_blocks(ggml_type::q6_k, k6.data(), 1, o6);
    for (int i = 0; i < 256; ++i) {
      const int g = i / 32, l = i % 32;
      // Q4_K: group g lives in the low (even g) or high (odd g) nibbles of qs[32*(g/2) + l].
      auto [s4, m4] = k_group_scale(k4, 4, g);
      const unsigned b4 = byte_at(k4, 16 + 32 * (g / 2) + l);
      const int q4 = static_cast<int>(g % 2 ? b4 / 16 : b4 % 16);
      CHECK(o4[i] == f(double{d} * s4 * q4 - double{dmin} * m4));
      // Q5_K: the same plus bit g of qh[l] as the fifth bit.
      auto [s5, m5] = k_group_scale(k5, 4, g);
      const unsigned b5 = byte_at(k5, 48 + 32 * (g / 2) + l);
      const int hi = static_cast<int>((byte_at(k5, 16 + l) >> g) & 1);
      const int q5 = static_cast<int>(g % 2 ? b5 / 16 : b5 % 16) + 16 * hi;
      CHECK(o5[i] == f(double{d} * s5 * q5 - double{dmin} * m5));
      // Q6_K: half h = i/128, quarter k = (i%128)/32; low nibble of ql[64h + l + 32(k%2)] (high
      // nibble for k >= 2), two bits 2k of qh[32h + l], int8 scale 8h + (i%128)/16.
      const int h = i / 128, r = i % 128, k = r / 32;
      const unsigned lo = byte_at(k6, static_cast<std::size_t>(64 * h + l + 32 * (k % 2)));
      const int low4 = static_cast<int>(k >= 2 ? lo / 16 : lo % 16);
      const int high2 = static_cast<int>(
          (byte_at(k6, static_cast<std::size_t>(128 + 32 * h + l)) >> (2 * k)) & 3);
      const int sc =
          static_cast<std::int8_t>(byte_at(k6, static_cast<std::size_t>(192 + 8 * h + r / 16)));
      CHECK(o6[i] == f(double{d} * sc * (low4 + 16 * high2 - 32)));
    }
  }
}

TEST_CASE("stats: decode checks its range and type") {
  std::vector<std::byte> data(34 * 2);
  std::vector<float> out(32);
  CHECK_NOTHROW(fq::gguf::decode(ggml_type::q8_0, data, 32, out));
  CHECK_THROWS_AS(fq::gguf::decode(ggml_type::q8_0, data, 16, out), fq::error);
  CHECK_THROWS_AS(fq::gguf::decode(ggml_type::q8_0, data, 64, out), fq::error);
  CHECK_THROWS_AS(fq::gguf::decode(ggml_type::q2_k, data, 0, out), fq::error);
  CHECK_FALSE(fq::gguf::can_decode(ggml_type::q4_1));
}

namespace {

// Decodes a whole tensor row by row (the way the evaluator will) and checks it against one entry
// of kq-reference.json.
void check_against_reference(const fq::gguf::file& f, const fq::gguf::tensor_info& t,
                             const nlohmann::json& ref) {
  INFO("tensor " << t.name << " of " << f.path());
  REQUIRE(fq::gguf::can_decode(t.type));
  CHECK(ref.at("type").get<std::string>() == std::string(fq::gguf::type_name(t.type)));
  REQUIRE(ref.at("n").get<std::uint64_t>() == t.elements);
  const auto data = f.tensor_data(t);
  std::vector<float> row(t.ne[0]);
  std::vector<float> first, last;
  long double sum = 0, sum_sq = 0, sum_abs = 0;
  for (std::uint64_t r = 0; r < t.rows(); ++r) {
    fq::gguf::decode(t.type, data, r * t.ne[0], row);
    for (float v : row) {
      sum += v;
      sum_abs += std::fabs(v);
      sum_sq += static_cast<long double>(v) * v;
      if (first.size() < 8) first.push_back(v);
    }
  }
  last.assign(row.end() - 8, row.end());
  for (int i = 0; i < 8; ++i) {
    CHECK(static_cast<double>(first[i]) == ref.at("first8")[i].get<double>());
    CHECK(static_cast<double>(last[i]) == ref.at("last8")[i].get<double>());
  }
  // The reference sums are numpy float64 reductions (rounded); ours are in long double. A single
  // wrong block moves them by far more than this tolerance.
  CHECK(std::fabs(static_cast<double>(sum) - ref.at("sum").get<double>()) <=
        1e-12 * static_cast<double>(sum_abs) + 1e-300);
  CHECK(std::fabs(static_cast<double>(sum_sq) - ref.at("sum_sq").get<double>()) <=
        1e-12 * static_cast<double>(sum_sq) + 1e-300);
}

}  // namespace

TEST_CASE("stats: decoders equal gguf-py's checksums for every tensor of every kq model") {
  const auto ref_path = fq_test::require_shared("reference/kq/kq-reference.json");
  if (ref_path.empty()) return;
  std::ifstream in(ref_path);
  const auto ref = nlohmann::json::parse(in);
  std::size_t checked = 0;
  std::set<std::string> types;
  for (const auto& [model, entry] : ref.at("models").items()) {
    const auto f = fq::gguf::file::open(
        (ref_path.parent_path().parent_path().parent_path() / "testdata/models" / model).string());
    const auto& tensors = entry.at("dequantized");
    CHECK(tensors.size() == f.tensors().size());
    for (const auto& t : f.tensors()) {
      REQUIRE(tensors.contains(std::string(t.name)));
      check_against_reference(f, t, tensors.at(std::string(t.name)));
      types.insert(std::string(fq::gguf::type_name(t.type)));
      ++checked;
    }
  }
  CHECK(checked > 50);
  // The files cover F32, F16, Q4_0, Q4_K, Q5_K and Q6_K.
  CHECK(types == std::set<std::string>{"F32", "F16", "Q4_0", "Q4_K", "Q5_K", "Q6_K"});
}

TEST_CASE("stats: tl-mini f16 and q8_0 decode to within their rounding of the f32 original") {
  const auto dir = fq_test::require_shared("testdata/models");
  if (dir.empty()) return;
  const auto base = fq::gguf::file::open((dir / "tl-mini-f32.gguf").string());
  for (const char* name : {"tl-mini-f16.gguf", "tl-mini-q8_0.gguf"}) {
    const auto q = fq::gguf::file::open((dir / name).string());
    REQUIRE(q.tensors().size() == base.tensors().size());
    std::size_t quantized = 0;
    for (const auto& t : q.tensors()) {
      INFO(name << " " << t.name);
      const auto& o = base.tensor(t.name);
      REQUIRE(o.elements == t.elements);
      std::vector<float> a(o.elements), b(t.elements);
      fq::gguf::decode(o.type, base.tensor_data(o), 0, a);
      fq::gguf::decode(t.type, q.tensor_data(t), 0, b);
      if (t.type == ggml_type::f32) {
        CHECK(std::memcmp(a.data(), b.data(), a.size() * 4) == 0);
        continue;
      }
      ++quantized;
      bool ok = true;
      for (std::size_t i = 0; i < a.size() && ok; i += 32) {
        float amax = 0;
        for (std::size_t k = i; k < i + 32; ++k) amax = std::max(amax, std::fabs(a[k]));
        for (std::size_t k = i; k < i + 32 && ok; ++k) {
          const double err = std::fabs(static_cast<double>(a[k]) - b[k]);
          // f16: round to nearest of an 11-bit significand; q8_0: half a step of amax/127 plus
          // the f16 rounding of the scale.
          const double bound =
              t.type == ggml_type::f16 ? std::fabs(a[k]) * 0x1p-11 + 0x1p-25 : 0.6 * amax / 127.0;
          ok = err <= bound;
          if (!ok) FAIL_CHECK("element " << k << ": " << a[k] << " vs " << b[k]);
        }
      }
    }
    CHECK(quantized > 20);
  }
}

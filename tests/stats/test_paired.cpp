// SPDX-License-Identifier: MIT
// The exact accumulator and the paired reducer on adversarial inputs: exactness of sums and means,
// agreement of the SIMD path with the scalar oracle, independence of the thread count.
#include <algorithm>
#include <bit>
#include <cmath>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/paired.hpp>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

namespace st = fq::stats;

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

bool same_bits(double x, double y) {
  return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
}

bool close(double got, double want, double rel = 1e-12) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= rel * std::fabs(want) + 1e-300;
}

// Values log-uniform over [lo, hi] with random signs.
std::vector<float> wide(std::size_t n, double lo, double hi, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> e(std::log(lo), std::log(hi));
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>((rng() & 1 ? 1 : -1) * std::exp(e(rng)));
  return v;
}

// Student-t-like weights and a crude 4-bit-ish quantization of them.
void weights(std::size_t n, std::mt19937_64& rng, std::vector<float>& a, std::vector<float>& b) {
  std::student_t_distribution<float> t(5);
  a.resize(n), b.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = 0.02f * t(rng);
    b[i] = std::round(a[i] * 400.0f) / 400.0f;
  }
}

// Every field equal bit for bit.
void check_identical(const st::paired_stats& x, const st::paired_stats& y) {
  CHECK(x.count == y.count);
  CHECK(x.finite_pairs == y.finite_pairs);
  CHECK(x.changed == y.changed);
  CHECK(x.nan_a == y.nan_a);
  CHECK(x.nan_b == y.nan_b);
  CHECK(x.inf_a == y.inf_a);
  CHECK(x.inf_b == y.inf_b);
  CHECK(x.sign_flips == y.sign_flips);
  CHECK(x.flushed_to_zero == y.flushed_to_zero);
  CHECK(x.max_abs_diff_index == y.max_abs_diff_index);
  CHECK(x.max_rel_diff_index == y.max_rel_diff_index);
  for (auto [p, q] : {std::pair{x.max_abs_diff, y.max_abs_diff},
                      {x.mean_abs_diff, y.mean_abs_diff},
                      {x.max_rel_diff, y.max_rel_diff},
                      {x.mean_rel_diff, y.mean_rel_diff},
                      {x.rmse, y.rmse},
                      {x.sqnr_db, y.sqnr_db},
                      {x.cosine, y.cosine},
                      {x.sum_sq_a, y.sum_sq_a},
                      {x.sum_sq_b, y.sum_sq_b},
                      {x.sum_sq_diff, y.sum_sq_diff},
                      {x.dot, y.dot}})
    CHECK(same_bits(p, q));
}

// The SIMD path against the all-exact scalar oracle: exact fields bit for bit, the rest to 1e-12.
void check_against_oracle(std::span<const float> a, std::span<const float> b) {
  const auto fast = st::compare(a, b, {.threads = 1});
  const auto slow = st::compare(a, b, {.threads = 1, .force_scalar = true});
  CHECK(fast.count == slow.count);
  CHECK(fast.finite_pairs == slow.finite_pairs);
  CHECK(fast.changed == slow.changed);
  CHECK(fast.sign_flips == slow.sign_flips);
  CHECK(fast.flushed_to_zero == slow.flushed_to_zero);
  CHECK(fast.nan_a + fast.inf_a == slow.nan_a + slow.inf_a);
  CHECK(same_bits(fast.mean_abs_diff, slow.mean_abs_diff));
  CHECK(same_bits(fast.max_abs_diff, slow.max_abs_diff));
  CHECK(fast.max_abs_diff_index == slow.max_abs_diff_index);
  CHECK(same_bits(fast.max_rel_diff, slow.max_rel_diff));
  CHECK(fast.max_rel_diff_index == slow.max_rel_diff_index);
  CHECK(same_bits(fast.mean_rel_diff, slow.mean_rel_diff));
  CHECK(same_bits(fast.dot, slow.dot));  // Σab is exact on both paths
  CHECK(close(fast.rmse, slow.rmse));
  CHECK(close(fast.sqnr_db, slow.sqnr_db));
  CHECK(close(fast.cosine, slow.cosine));
  CHECK(close(fast.sum_sq_a, slow.sum_sq_a));
  CHECK(close(fast.sum_sq_diff, slow.sum_sq_diff));
}

}  // namespace

TEST_CASE("stats: exact_sum is exact and rounds to nearest even") {
  st::exact_sum s;
  for (double x : {1e30, 1.0, -1e30}) s.add(x);
  CHECK(s.value() == 1.0);

  st::exact_sum t;  // 2^53 + 1 is a tie between 2^53 and 2^53 + 2: even wins
  t.add(0x1p53);
  t.add(1.0);
  CHECK(t.value() == 0x1p53);
  t.add(0x1p-1000);  // anything above the tie rounds up
  CHECK(t.value() == 0x1p53 + 2);

  st::exact_sum u;  // the smallest subnormals, and cancellation down to them
  u.add(std::numeric_limits<double>::denorm_min());
  u.add(std::numeric_limits<double>::max());
  u.add(-std::numeric_limits<double>::max());
  CHECK(u.value() == std::numeric_limits<double>::denorm_min());
  u.add(std::numeric_limits<double>::max());
  u.add(std::numeric_limits<double>::max());
  CHECK(u.value() == inf);  // overflows only on rounding

  // Order independence over a wide range: shuffled sums agree bit for bit, and a sum of x and -x
  // pairs plus c is exactly c.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> e(-300, 300);
  std::vector<double> v(5000);
  for (auto& x : v) x = (rng() & 1 ? 1 : -1) * std::pow(10.0, e(rng));
  st::exact_sum fwd, rev, pairs;
  for (double x : v) fwd.add(x), pairs.add(x), pairs.add(-x);
  std::shuffle(v.begin(), v.end(), rng);
  for (double x : v) rev.add(x);
  CHECK(same_bits(fwd.value(), rev.value()));
  pairs.add(0.1);
  CHECK(pairs.value() == 0.1);
  // Integers below 2^62 are exact in long double: an independent check of carries and signs.
  st::exact_sum ints;
  long double ref = 0;
  std::uniform_int_distribution<std::int64_t> big(-(std::int64_t{1} << 52), std::int64_t{1} << 52);
  for (int i = 0; i < 100000; ++i) {
    const auto k = static_cast<double>(big(rng));
    ints.add(k);
    ref += k;
  }
  CHECK(ints.value() == static_cast<double>(ref));
}

TEST_CASE("stats: exact_mean is the exactly rounded quotient") {
  st::exact_sum s;  // (2^53 + 1) / 3 = 3002399751580331 exactly; fl(fl(sum)/3) is not
  s.add(0x1p53);
  s.add(1.0);
  CHECK(st::exact_mean(s, 3) == 3002399751580331.0);
  st::exact_sum t;
  t.add(1.0);
  CHECK(st::exact_mean(t, 3) == 1.0 / 3.0);
  CHECK(std::isnan(st::exact_mean(st::exact_sum{}, 0)));
  // Random sums against long double division (exact enough to decide the rounding of these).
  std::mt19937_64 rng(4);
  for (int i = 0; i < 2000; ++i) {
    st::exact_sum r;
    const auto k = static_cast<double>(rng() >> 12);
    r.add(k);
    const std::uint64_t n = 1 + rng() % 1000;
    const long double q = static_cast<long double>(k) / n;
    CHECK(st::exact_mean(r, n) == static_cast<double>(q));
  }
}

TEST_CASE("stats: paired statistics on small adversarial inputs") {
  SUBCASE("cancellation [1e30, 1, -1e30]") {
    const std::vector<float> a{1e30f, 1.0f, -1e30f}, b{1e30f, 0.0f, -1e30f};
    const auto s = st::compare(a, b);
    CHECK(s.count == 3);
    CHECK(s.changed == 1);
    CHECK(s.flushed_to_zero == 1);
    CHECK(s.mean_abs_diff == 1.0 / 3.0);
    CHECK(s.max_abs_diff == 1.0);
    CHECK(s.max_abs_diff_index == 1);
    CHECK(s.max_rel_diff == 1.0 / (1.0 + 1e-8));
    CHECK(s.mean_rel_diff == (1.0 / (1.0 + 1e-8)) / 3.0);
    // Σa² = 2e60 + 1 rounds to fl(2 * 1e30f²); Σab = Σa² - 1.
    const double big = static_cast<double>(1e30f) * 1e30f;
    CHECK(s.sum_sq_a == 2 * big);
    CHECK(s.sum_sq_diff == 1.0);
    CHECK(s.rmse == std::sqrt(1.0 / 3.0));
    CHECK(close(s.cosine, 1.0));
  }
  SUBCASE("cancellation in the dot product") {
    const std::vector<float> a{1e30f, 1.0f, -1e30f}, b{1e30f, 1.0f, 1e30f};
    const auto s = st::compare(a, b);
    CHECK(s.dot == 1.0);  // 1e60 + 1 - 1e60
    CHECK(s.sign_flips == 1);
    const double big = static_cast<double>(1e30f) * 1e30f;
    CHECK(close(s.cosine, 1.0 / (2 * big)));
  }
  SUBCASE("all equal, all zero, empty") {
    const std::vector<float> a(1000, 0.1f), z(1000, 0.0f);
    const auto s = st::compare(a, a);
    CHECK(s.changed == 0);
    CHECK(s.mean_abs_diff == 0.0);
    CHECK(s.rmse == 0.0);
    CHECK(s.sqnr_db == inf);
    CHECK(close(s.cosine, 1.0, 1e-15));
    const auto zz = st::compare(z, z);
    CHECK(zz.changed == 0);
    CHECK(std::isnan(zz.cosine));
    CHECK(std::isnan(zz.sqnr_db));
    CHECK(zz.mean_abs_diff == 0.0);
    const auto e = st::compare(std::span<const float>{}, std::span<const float>{});
    CHECK(e.count == 0);
    CHECK(std::isnan(e.mean_abs_diff));
    CHECK_THROWS_AS(st::compare(a, std::span<const float>(z).first(5)), fq::error);
  }
  SUBCASE("NaN and Inf are counted and left out") {
    std::vector<float> a(300, 1.0f), b(300, 1.0f);
    a[3] = std::numeric_limits<float>::quiet_NaN();
    b[4] = std::numeric_limits<float>::infinity();
    a[5] = -std::numeric_limits<float>::infinity();
    b[5] = -std::numeric_limits<float>::infinity();
    b[6] = 2.0f;
    const auto s = st::compare(a, b);
    CHECK(s.nan_a == 1);
    CHECK(s.nan_b == 0);
    CHECK(s.inf_a == 1);
    CHECK(s.inf_b == 2);
    CHECK(s.finite_pairs == 297);
    CHECK(s.changed == 3);  // 3, 4 and 6; the two -Inf are identical
    CHECK(s.max_abs_diff == 1.0);
    CHECK(s.max_abs_diff_index == 6);
    CHECK(s.mean_abs_diff == 1.0 / 297);
  }
  SUBCASE("subnormals") {
    const float tiny = std::numeric_limits<float>::denorm_min();
    std::vector<float> a(512), b(512, 0.0f);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i % 7) * tiny;
    const auto s = st::compare(a, b);
    double sum = 0;
    for (float x : a) sum += x;  // exact: small multiples of 2^-149
    CHECK(s.mean_abs_diff == sum / 512);
    CHECK(s.flushed_to_zero == static_cast<std::uint64_t>(std::count_if(
                                   a.begin(), a.end(), [](float x) { return x != 0; })));
    check_against_oracle(a, b);
  }
}

TEST_CASE("stats: the SIMD path equals the scalar oracle for every length and range") {
  std::mt19937_64 rng(5);
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 255u, 256u, 257u, 511u, 512u, 513u, 1000u, 4099u}) {
    INFO("n = " << n);
    std::vector<float> a, b;
    weights(n, rng, a, b);
    check_against_oracle(a, b);
    auto w = wide(n, 1e-30, 1e30, rng), v = w;
    for (auto& x : v) x *= 1.0f + 1e-3f * static_cast<float>(rng() % 5);
    check_against_oracle(w, v);
  }
}

TEST_CASE("stats: blocks at the widest span the SIMD path takes stay exact") {
  // Each block holds magnitudes from 2^e down to 2^(e - span), full 24-bit mantissas, with Σab
  // cancelling to a few of the smallest products and |a-b| as large as the range allows: the
  // cases the SIMD path's exactness argument is tightest on. Every dispatched kernel must give
  // the oracle's exact sums.
  std::mt19937_64 rng(21);
  const std::size_t n = 8 * st::detail::block_size;
  constexpr int widest = st::detail::fast_span(st::detail::block_log2);
  // Spans beyond `widest` take the kernel on halved blocks (down to 64 elements: widest + 3),
  // and beyond that the exact path.
  for (int span : {widest - 1, widest, widest + 1, widest + 3, widest + 4})
    for (int e : {-140, -20, 0, 100})
      for (bool cancel : {false, true}) {
        INFO("span " << span << ", top exponent " << e << (cancel ? ", Σab cancelling" : ""));
        std::vector<float> a(n), b(n);
        for (std::size_t i = 0; i < n; ++i) {
          // Near-largest magnitudes with one in 7 at the bottom of the span, odd mantissas.
          const int ex = (i % 7 == 0) ? e - span : e;
          const float m = static_cast<float>(std::ldexp((1 << 24) - 1 - 2 * (rng() & 0xFFF), -23));
          a[i] = std::ldexp(m, ex) * ((rng() & 1) ? 1.0f : -1.0f);
          b[i] = -a[i];  // |a-b| = 2|a|, the largest difference the range allows
        }
        if (cancel) {
          // Pairs (i, i+1) of equal a cancel in Σab (-a², then +a²); one pair per block does not.
          for (std::size_t i = 0; i + 1 < n; i += 2) a[i + 1] = a[i], b[i + 1] = a[i];
          for (std::size_t k = 0; k < n; k += st::detail::block_size)
            b[k + 1] = std::nextafter(b[k + 1], 0.0f);
        }
        const auto oracle = st::compare(a, b, {.threads = 1, .force_scalar = true});
        for (const char* name : {"sse2", "avx2", "avx512"}) {
          st::kernel_table k;
          try {
            k = st::kernels_for(name);
          } catch (const fq::error&) {
            continue;
          }
          INFO(name);
          // Block by block: a fast block's Σ|a-b| and Σab (two parts) must be the exact sums.
          std::vector<st::detail::block_result> blocks(n / st::detail::block_size);
          k.blocks(a.data(), b.data(), blocks.size(), 1e-8, blocks.data());
          std::size_t fast = 0;
          for (std::size_t j = 0; j < blocks.size(); ++j) {
            if (!blocks[j].fast) continue;
            ++fast;
            st::exact_sum absd, ab;
            for (std::size_t i = j * st::detail::block_size; i < (j + 1) * st::detail::block_size;
                 ++i) {
              absd.add(-std::fabs(static_cast<double>(a[i]) - b[i]));  // exact in float64 here
              ab.add(-(static_cast<double>(a[i]) * b[i]));
            }
            absd.add(blocks[j].absd);
            ab.add(blocks[j].ab), ab.add(blocks[j].ab_err);
            CHECK(absd.sign() == 0);
            CHECK(ab.sign() == 0);
          }
          CHECK(fast == (span <= widest || e < -126 ? blocks.size() : 0));
          const auto s = st::compare(a, b, {.threads = 1, .kernels = k});
          CHECK(same_bits(s.dot, oracle.dot));
          CHECK(same_bits(s.mean_abs_diff, oracle.mean_abs_diff));
          CHECK(same_bits(s.mean_rel_diff, oracle.mean_rel_diff));
          CHECK(same_bits(s.max_abs_diff, oracle.max_abs_diff));
          CHECK(s.max_abs_diff_index == oracle.max_abs_diff_index);
          CHECK(close(s.sum_sq_a, oracle.sum_sq_a));
        }
      }
}

TEST_CASE("stats: results are bit-identical for 1, 2 and 4 threads") {
  std::mt19937_64 rng(6);
  std::vector<float> a, b;
  weights((std::size_t{1} << 22) + 77, rng, a, b);
  a[12345] = 1e-30f;  // one block on the scalar path
  b[999999] = std::numeric_limits<float>::quiet_NaN();
  const auto one = st::compare(a, b, {.threads = 1});
  check_identical(one, st::compare(a, b, {.threads = 2}));
  check_identical(one, st::compare(a, b, {.threads = 4}));
  // Streaming in chunks that are multiples of the block gives the same result.
  st::paired_reducer r({.threads = 2});
  const std::span<const float> sa(a), sb(b);
  constexpr std::size_t piece = st::detail::block_size * 500;
  for (std::size_t i = 0; i < a.size(); i += piece) {
    const std::size_t len = std::min<std::size_t>(piece, a.size() - i);
    r.update(sa.subspan(i, len), sb.subspan(i, len));
  }
  check_identical(one, r.result());
  CHECK(one.nan_b == 1);
  CHECK(one.finite_pairs == a.size() - 1);
}

TEST_CASE("stats: 10^8 pairs, exact sums and thread independence") {
  const std::size_t n = 100'000'000;
  std::vector<float> a(n), b(n);
  // |a-b| is 2^-10 on odd indices and 0 on the others: the exact mean is known, and a naive
  // float64 running sum drifts from it. Values in [-999.5, 999.5] from a cheap integer hash (a
  // random generator would take most of the test's time).
  for (std::size_t i = 0; i < n; ++i) {
    a[i] = static_cast<float>((i * 2654435761u) % 2000) - 999.5f;
    b[i] = a[i] + (i % 2 ? 0x1p-10f : 0.0f);
  }
  // The fastest kernel keeps this quick on a 2-core CI machine; every kernel gives these bits.
  const auto kernel = st::best_kernels();
  const auto one = st::compare(a, b, {.threads = 1, .kernels = kernel});
  CHECK(one.count == n);
  CHECK(one.changed == n / 2);
  CHECK(one.mean_abs_diff == 0x1p-11);
  CHECK(one.max_abs_diff == 0x1p-10);
  CHECK(one.max_abs_diff_index == 1);
  double naive = 0;
  for (std::size_t i = 0; i < n; ++i)
    naive +=
        std::fabs(static_cast<double>(a[i]) - b[i]) / (std::fabs(static_cast<double>(a[i])) + 1e-8);
  CHECK(close(one.mean_rel_diff, naive / static_cast<double>(n), 1e-9));
  check_identical(one, st::compare(a, b, {.threads = 4, .kernels = kernel}));
}

TEST_CASE("stats: derived statistics within 1e-12 of a long double reference") {
  std::mt19937_64 rng(11);
  for (std::size_t n : {1u, 9u, 300u, 100000u}) {
    INFO("n = " << n);
    std::vector<float> a, b;
    weights(n, rng, a, b);
    // A few sign flips and flushes on top of the rounding.
    for (std::size_t i = 0; i < n; i += 97) b[i] = (i % 2) ? 0.0f : -b[i];
    long double aa = 0, bb = 0, ab = 0, dd = 0, ad = 0, rel = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const long double x = a[i], y = b[i];
      aa += x * x, bb += y * y, ab += x * y, dd += (x - y) * (x - y);
      ad += std::fabs(x - y);
      rel += std::fabs(x - y) / (std::fabs(x) + 1e-8L);
    }
    const auto s = st::compare(a, b);
    const auto ln = static_cast<long double>(n);
    CHECK(close(s.rmse, static_cast<double>(std::sqrt(dd / ln))));
    CHECK(close(s.cosine, static_cast<double>(ab / (std::sqrt(aa) * std::sqrt(bb)))));
    if (dd > 0) CHECK(close(s.sqnr_db, static_cast<double>(10 * std::log10(aa / dd))));
    CHECK(close(s.mean_abs_diff, static_cast<double>(ad / ln), 1e-15));
    CHECK(close(s.mean_rel_diff, static_cast<double>(rel / ln), 1e-14));
  }
}

TEST_CASE("stats: every dispatched kernel gives the bits of the sse2 kernel and of the oracle") {
  std::mt19937_64 rng(13);
  std::vector<float> a, b;
  weights((std::size_t{1} << 20) + 77, rng, a, b);
  a[300] = std::numeric_limits<float>::quiet_NaN();  // a block of the exact path
  b[70000] = 0.0f;                                   // a flush
  auto w = wide(100000, 1e-30, 1e30, rng), v = w;
  for (auto& x : v) x *= 1.0f + 1e-3f * static_cast<float>(rng() % 5);
  const auto sse2 = st::kernels_for("sse2");
  const auto ref = st::compare(a, b, {.threads = 2, .kernels = sse2});
  const auto ref_wide = st::compare(w, v, {.threads = 1, .kernels = sse2});
  const auto oracle = st::compare(a, b, {.threads = 1, .force_scalar = true});
  CHECK(same_bits(ref.mean_abs_diff, oracle.mean_abs_diff));
  CHECK(same_bits(ref.mean_rel_diff, oracle.mean_rel_diff));
  CHECK(ref.sign_flips == oracle.sign_flips);
  CHECK(ref.flushed_to_zero == oracle.flushed_to_zero);
  std::size_t ran = 0;
  for (const char* name : {"avx2", "avx512", "default"}) {
    st::kernel_table k;
    try {
      k = st::kernels_for(name);
    } catch (const fq::error&) {
      MESSAGE("skipping the " << name << " kernel: this CPU lacks it");
      continue;
    }
    INFO(name);
    check_identical(ref, st::compare(a, b, {.threads = 2, .kernels = k}));
    check_identical(ref_wide, st::compare(w, v, {.threads = 1, .kernels = k}));
    ++ran;
  }
  CHECK(ran >= 1);
  const bool has_best = st::best_kernels().blocks != nullptr;
  CHECK(has_best);
  CHECK_THROWS_AS(st::kernels_for("mmx"), fq::error);
}

TEST_CASE("stats: ratios the kernel cannot hold go the exact way") {
  // ε = 0 makes 0/0 a NaN ratio, a tiny ε overflows a ratio to Inf: both must come out as the
  // exact path gives them, whatever the kernel.
  std::vector<float> a(512, 0.5f), b(512, 0.25f);
  a[7] = 0.0f, b[7] = 0.0f;      // 0/0 when ε = 0
  a[300] = 0.0f, b[300] = 1.0f;  // 1 / 1e-320 overflows; the block is narrow enough for SIMD
  for (double eps : {0.0, 1e-320, 1e-8}) {
    INFO("epsilon = " << eps);
    const auto fast = st::compare(a, b, {.epsilon = eps, .threads = 1});
    const auto slow = st::compare(a, b, {.epsilon = eps, .threads = 1, .force_scalar = true});
    CHECK(same_bits(fast.mean_rel_diff, slow.mean_rel_diff));
    CHECK(same_bits(fast.max_rel_diff, slow.max_rel_diff));
    CHECK(fast.max_rel_diff_index == slow.max_rel_diff_index);
    CHECK(same_bits(fast.mean_abs_diff, slow.mean_abs_diff));
  }
  CHECK(std::isnan(st::compare(a, b, {.epsilon = 0.0}).mean_rel_diff));
  CHECK(std::isinf(st::compare(a, b, {.epsilon = 1e-320}).mean_rel_diff));
}

__extension__ typedef __int128 int128;  // GCC and clang; __extension__ keeps -Wpedantic quiet

TEST_CASE("stats: cosine and RMSE of a cancelling dot product against exact integers") {
  // Values are multiples of 2^-10 below 2^10, so every product is a multiple of 2^-20 below 2^20
  // and all sums are exact as 128-bit integers in units of 2^-20: an independent exact reference.
  // b is (y, -y) against a = (x, x), so Σab cancels to exactly one perturbation term.
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<int> q(-(1 << 20) + 1, (1 << 20) - 1);
  const std::size_t half = 2053;  // odd, so blocks and the scalar tail both take part
  std::vector<float> a(2 * half), b(2 * half);
  for (std::size_t i = 0; i < half; ++i) {
    a[i] = a[half + i] = static_cast<float>(std::ldexp(q(rng), -10));
    b[i] = static_cast<float>(std::ldexp(q(rng), -10));
    b[half + i] = -b[i];
  }
  b[5] += 0x1p-10f;  // the only term that survives: Σab = a[5] · 2^-10
  int128 aa = 0, bb = 0, ab = 0, dd = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<int128>(std::ldexp(a[i], 10));
    const auto y = static_cast<int128>(std::ldexp(b[i], 10));
    aa += x * x, bb += y * y, ab += x * y, dd += (x - y) * (x - y);
  }
  REQUIRE(ab == static_cast<int128>(std::ldexp(a[5], 10)));
  const auto ld = [](int128 v) { return std::ldexp(static_cast<long double>(v), -20); };
  const long double cosine = ld(ab) / (std::sqrt(ld(aa)) * std::sqrt(ld(bb)));
  const long double rmse = std::sqrt(ld(dd) / a.size());
  const long double sqnr = 10 * std::log10(ld(aa) / ld(dd));
  for (unsigned threads : {1u, 2u}) {
    const auto s = st::compare(a, b, {.threads = threads});
    CHECK(s.dot == static_cast<double>(ld(ab)));
    CHECK(close(s.cosine, static_cast<double>(cosine)));
    CHECK(close(s.rmse, static_cast<double>(rmse)));
    CHECK(close(s.sqnr_db, static_cast<double>(sqnr)));
  }
}

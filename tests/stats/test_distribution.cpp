// SPDX-License-Identifier: MIT
// Distribution summaries and changes: numpy's quantile rule, exact means, stable std, distinct
// values, Wasserstein-1, histograms, and the handling of NaN, Inf and empty inputs.
#include <algorithm>
#include <cmath>
#include <fakequant/stats/distribution.hpp>
#include <limits>
#include <random>
#include <vector>

#include "support.hpp"

namespace st = fq::stats;

TEST_CASE("stats: quantiles follow numpy's linear rule") {
  const std::vector<float> x{4, 1, 3, 2};
  const std::vector<double> p{0.0, 0.25, 0.5, 0.75, 1.0, 0.1};
  const auto q = st::quantiles(x, p);
  // np.quantile([1, 2, 3, 4], [0, .25, .5, .75, 1, .1]) = [1, 1.75, 2.5, 3.25, 4, 1.3]
  CHECK(q[0] == 1.0);
  CHECK(q[1] == 1.75);
  CHECK(q[2] == 2.5);
  CHECK(q[3] == 3.25);
  CHECK(q[4] == 4.0);
  CHECK(q[5] == doctest::Approx(1.3).epsilon(1e-15));
  const std::vector<float> one{7};
  CHECK(st::quantiles(one, p) == std::vector<double>(p.size(), 7.0));
  CHECK(std::isnan(st::quantiles(std::span<const float>{}, p)[0]));
}

TEST_CASE("stats: quantiles by selection equal those of the sorted data") {
  std::mt19937_64 rng(8);
  std::normal_distribution<float> g(0, 1);
  for (std::size_t n : {1u, 2u, 7u, 8u, 9u, 1000u, 100001u}) {
    std::vector<float> x(n);
    for (auto& v : x) v = g(rng);
    if (n > 100) x[5] = x[6] = x[7];  // ties
    const auto sel = st::quantiles(x, st::default_probabilities);
    const auto sum = st::summarize(x);
    std::vector<float> sorted = x;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t k = 0; k < sel.size(); ++k) {
      CHECK(sel[k] == sum.quantiles[k]);
      CHECK(sel[k] >= sorted.front());
      CHECK(sel[k] <= sorted.back());
    }
    CHECK(sum.min == sorted.front());
    CHECK(sum.max == sorted.back());
    CHECK(sum.distinct ==
          static_cast<std::uint64_t>(std::unique(sorted.begin(), sorted.end()) - sorted.begin()));
  }
}

TEST_CASE("stats: summaries of adversarial data") {
  SUBCASE("cancellation") {
    const std::vector<float> x{1e30f, 1.0f, -1e30f};
    const auto s = st::summarize(x);
    CHECK(s.mean == 1.0 / 3.0);
    const double big = 1e30f;
    // population std: sqrt(((big-m)² + (1-m)² + (big+m)²)/3) = big·sqrt(2/3) to double precision
    CHECK(s.std == doctest::Approx(big * std::sqrt(2.0 / 3.0)).epsilon(1e-14));
    CHECK(s.distinct == 3);
  }
  SUBCASE("a large mean and a small spread") {
    const std::vector<float> x{16777216.0f, 16777218.0f, 16777220.0f, 16777222.0f};
    const auto s = st::summarize(x);
    CHECK(s.mean == 16777219.0);
    CHECK(s.std == std::sqrt(5.0));  // naive Σx² - nμ² loses this entirely in float64
  }
  SUBCASE("all equal and all zero, with both zeros") {
    const std::vector<float> x(1000, 0.3f);
    const auto s = st::summarize(x);
    CHECK(s.mean == static_cast<double>(0.3f));
    CHECK(s.std == 0.0);
    CHECK(s.distinct == 1);
    CHECK(s.quantiles[0] == static_cast<double>(0.3f));
    const std::vector<float> z{0.0f, -0.0f, 0.0f};
    const auto sz = st::summarize(z);
    CHECK(sz.distinct == 1);
    CHECK(sz.std == 0.0);
    CHECK(sz.mean == 0.0);
  }
  SUBCASE("NaN and Inf are counted and left out; empty input") {
    const std::vector<float> x{1.0f, std::numeric_limits<float>::quiet_NaN(), 3.0f,
                               -std::numeric_limits<float>::infinity()};
    const auto s = st::summarize(x);
    CHECK(s.count == 4);
    CHECK(s.finite == 2);
    CHECK(s.nan == 1);
    CHECK(s.inf == 1);
    CHECK(s.mean == 2.0);
    CHECK(s.max == 3.0);
    const auto e = st::summarize(std::span<const float>{});
    CHECK(e.finite == 0);
    CHECK(std::isnan(e.mean));
  }
  SUBCASE("subnormals") {
    const float t = std::numeric_limits<float>::denorm_min();
    const std::vector<float> x{t, 2 * t, 3 * t};
    const auto s = st::summarize(x);
    CHECK(s.mean == 2.0 * t);
    CHECK(s.std == doctest::Approx(std::sqrt(2.0 / 3.0) * t).epsilon(1e-15));
  }
}

TEST_CASE("stats: distribution change") {
  SUBCASE("identical sides") {
    std::mt19937 rng(9);
    std::normal_distribution<float> g(0, 1);
    std::vector<float> x(5000);
    for (auto& v : x) v = g(rng);
    const auto c = st::compare_distributions(x, x, 32);
    CHECK(c.change.wasserstein1 == 0.0);
    CHECK(c.change.histogram_overlap == 1.0);
    CHECK(c.change.mean_shift == 0.0);
    CHECK(c.edges.size() == 33);
    CHECK(c.before.histogram == c.after.histogram);
    std::uint64_t total = 0;
    for (auto k : c.before.histogram) total += k;
    CHECK(total == 5000);  // min and max both land in a bin
  }
  SUBCASE("known distances") {
    const std::vector<float> a{0, 1}, b{0, 2};
    const auto c = st::compare_distributions(a, b, 2);
    CHECK(c.change.wasserstein1 == 0.5);
    CHECK(c.change.mean_shift == 0.5);
    CHECK(c.edges == std::vector<double>{0, 1, 2});
    CHECK(c.before.histogram == std::vector<std::uint64_t>{1, 1});
    CHECK(c.after.histogram == std::vector<std::uint64_t>{1, 1});
    const std::vector<float> one{0}, two{1, 1};
    CHECK(st::compare_distributions(one, two).change.wasserstein1 == 1.0);
    const std::vector<float> lo{0, 0}, hi{10, 10};
    const auto d = st::compare_distributions(lo, hi, 4);
    CHECK(d.change.histogram_overlap == 0.0);
    CHECK(d.change.wasserstein1 == 10.0);
  }
  SUBCASE("W1 equals the mean distance of order statistics for equal sizes") {
    std::mt19937 rng(10);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> a(777), b(777);
    for (auto& v : a) v = u(rng);
    for (auto& v : b) v = u(rng) * 0.5f + 0.1f;
    const auto c = st::compare_distributions(a, b);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    long double ref = 0;
    for (std::size_t i = 0; i < a.size(); ++i)
      ref += std::fabs(static_cast<long double>(a[i]) - b[i]);
    CHECK(c.change.wasserstein1 ==
          doctest::Approx(static_cast<double>(ref / a.size())).epsilon(1e-12));
    CHECK(c.change.histogram_overlap > 0.0);
    CHECK(c.change.histogram_overlap < 1.0);
  }
}

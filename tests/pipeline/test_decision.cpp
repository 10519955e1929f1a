// SPDX-License-Identifier: MIT
// The decision table of test1-plan.md, every branch.
#include <fakequant/plan/decision.hpp>

#include "support.hpp"

using namespace fq::plan;

TEST_CASE("decision: the bands of each column") {
  CHECK(numerical_band(0.0016, 0.0036, false) == scenario::optimistic);  // test 1 on tl-mini
  CHECK(numerical_band(0.0099, 0.0999, false) == scenario::optimistic);
  CHECK(numerical_band(0.0099, 0.10, false) == scenario::medium);
  CHECK(numerical_band(0.01, 0.01, false) == scenario::pessimistic);
  CHECK(numerical_band(0.001, 0.001, true) == scenario::pessimistic);
  CHECK(perplexity_band(-0.027) == scenario::optimistic);  // a decrease counts as < 1 %
  CHECK(perplexity_band(0.0099) == scenario::optimistic);
  CHECK(perplexity_band(0.01) == scenario::medium);
  CHECK(perplexity_band(0.0499) == scenario::medium);
  CHECK(perplexity_band(0.05) == scenario::pessimistic);
  CHECK(conversation_band(0, 0.5) == scenario::optimistic);
  CHECK(conversation_band(0, 0.49) == scenario::medium);
  CHECK(conversation_band(1, 1.0) == scenario::pessimistic);
}

TEST_CASE("decision: the worst column decides, a must-pass failure stops") {
  const must_pass ok;
  CHECK(decide(ok, scenario::optimistic, scenario::optimistic, scenario::optimistic).decision ==
        verdict::go);
  CHECK(decide(ok, scenario::medium, scenario::optimistic, scenario::optimistic).decision ==
        verdict::caution);
  CHECK(decide(ok, scenario::optimistic, scenario::medium, scenario::optimistic).decision ==
        verdict::caution);
  CHECK(decide(ok, scenario::optimistic, scenario::optimistic, scenario::medium).decision ==
        verdict::caution);
  CHECK(decide(ok, scenario::optimistic, scenario::optimistic, scenario::pessimistic).decision ==
        verdict::stop);
  CHECK(decide(ok, scenario::pessimistic, scenario::medium, scenario::optimistic).overall ==
        scenario::pessimistic);
  for (int k = 0; k < 4; ++k) {
    must_pass m;
    (k == 0 ? m.loads : k == 1 ? m.inference : k == 2 ? m.stable : m.format_correct) = false;
    const auto o = decide(m, scenario::optimistic, scenario::optimistic, scenario::optimistic);
    CHECK(o.overall == scenario::pessimistic);
    CHECK(o.decision == verdict::stop);
  }
  CHECK(to_string(verdict::caution) == "CAUTION");
}

TEST_CASE("decision: conversation checks, repetition and agreement") {
  const std::vector<std::int32_t> rep{353, 353, 353, 353, 353, 353, 353, 353, 353, 353, 353, 353};
  CHECK(degenerate_repetition(rep));
  std::vector<std::int32_t> varied(24);
  for (std::size_t i = 0; i < varied.size(); ++i) varied[i] = static_cast<std::int32_t>(i);
  CHECK_FALSE(degenerate_repetition(varied));
  CHECK_FALSE(degenerate_repetition(std::vector<std::int32_t>(11, 7)));  // too short to judge
  const std::vector<std::int32_t> a{1, 2, 3, 4}, b{1, 2, 9, 4};
  CHECK(agreement(a, a) == 1.0);
  CHECK(agreement(a, b) == 0.5);
  CHECK(agreement(a, {}) == 0.0);
  const auto good = check_output("text", varied, true);
  CHECK(good.all());
  const auto bad = check_output("\xff", rep, true);
  CHECK_FALSE(bad.valid_utf8);
  CHECK_FALSE(bad.not_degenerate);
  CHECK(failures_against(good, bad) == 2);
  CHECK(failures_against(bad, bad) == 0);  // only where the original passes
}

TEST_CASE("decision: paired interval on the perplexity ratio and --until-confident") {
  CHECK(student_t(1, 0.95) == doctest::Approx(12.706));
  CHECK(student_t(20, 0.99) == doctest::Approx(2.845));
  CHECK(student_t(30, 0.95) == doctest::Approx(2.042).epsilon(0.003));
  CHECK(student_t(120, 0.99) == doctest::Approx(2.617).epsilon(0.003));
  // Chunks all raising the nll by about 0.001: a ratio near +0.1 %, confidently below 1 %.
  const std::vector<double> small{0.0011, 0.0009, 0.0010, 0.0012, 0.0008};
  const auto i = ratio_interval(small, 0.95);
  CHECK(i.lo < 0.001);
  CHECK(i.hi > 0.001);
  CHECK(i.hi < 0.01);
  CHECK(confident(small));
  CHECK_FALSE(confident(std::span(small).first(3)));  // at least 4 chunks
  // Straddling the 1 % boundary: not yet.
  const std::vector<double> straddle{0.0, 0.02, 0.005, 0.015};
  CHECK_FALSE(confident(straddle));
}

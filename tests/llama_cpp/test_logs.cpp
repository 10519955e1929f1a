// SPDX-License-Identifier: MIT
// Readers of llama.cpp's output on the real logs of ../shared/reference: each figure equals the one
// recorded independently in the reference JSON files, and damaged logs never crash the readers.
#include <fmt/core.h>

#include <cmath>
#include <fakequant/llama_cpp/logs.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace fq::llama_cpp;

namespace {

std::string read_text(const fs::path& p) {
  const auto b = fq_test::read_bytes(p);
  return {b.begin(), b.end()};
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(read_text(p)); }

// Figures printed with `digits` decimals equal the reference to that precision.
bool same(double a, double b, int digits) {
  return std::fabs(a - b) <= 0.6 * std::pow(10, -digits);
}

}  // namespace

TEST_CASE("llama.cpp logs: perplexity final estimate and running values of every tl-mini run") {
  const auto ref = fq_test::require_shared("reference/tl-mini");
  if (ref.empty()) return;
  const auto j = read_json(ref / "llama.cpp-reference.json");
  const std::regex plain(R"(ppl-tl-mini-(f32|f16|q8_0)-(c\d+_b\d+_chunks\d+)\.txt)");
  const std::regex fake(R"(ppl-tl-mini-(.+)-c256\.txt)");
  int checked = 0;
  for (const auto& e : fs::directory_iterator(ref / "llama.cpp-logs")) {
    const auto name = e.path().filename().string();
    std::smatch m;
    nlohmann::json want;
    if (std::regex_match(name, m, plain))
      want = j["ppl"]["tl-mini-" + m[1].str() + ".gguf"][m[2].str()];
    else if (std::regex_match(name, m, fake))
      want = j["fake_quant"][m[1].str()]["ppl_c256_b256_chunks20"];
    else
      continue;
    CAPTURE(name);
    const auto text = read_text(e.path());
    const auto r = parse_perplexity_log(text);
    REQUIRE(r.found_final);
    CHECK(same(r.ppl, want[0].get<double>(), 4));
    CHECK(same(r.ppl_error, want[1].get<double>(), 5));
    // The last running value is the final estimate, and there is one per chunk.
    REQUIRE(r.n_chunks > 0);
    CHECK(r.running.size() == r.n_chunks);
    CHECK(same(r.running.back(), r.ppl, 4));
    // The same from the two streams read separately: the values on stdout, the estimate on stderr.
    const auto cap = split_captured(text);
    REQUIRE(cap.marked);
    CHECK(cap.command.substr(0, 16) == "llama-perplexity");
    CHECK(parse_perplexity_log(cap.out).running == r.running);
    CHECK(parse_perplexity_log(cap.err).ppl == r.ppl);
    CHECK_FALSE(parse_perplexity_log(cap.out).found_final);
    ++checked;
  }
  CHECK(checked == 12);
}

TEST_CASE("llama.cpp logs: KL-divergence statistics of every tl-mini run") {
  const auto ref = fq_test::require_shared("reference/tl-mini");
  if (ref.empty()) return;
  const auto j = read_json(ref / "llama.cpp-reference.json")["kld_c256_chunks20"];
  int checked = 0;
  for (const auto& item : j.items()) {
    // Plain names: clang 14 cannot capture structured bindings in CAPTURE's lambda.
    const std::string key = item.key();
    const auto& want = item.value();
    CAPTURE(key);
    const auto text = read_text(ref / "llama.cpp-logs" / ("kld-tl-mini-" + key + ".txt"));
    const auto r = parse_kld_log(split_captured(text).out);
    REQUIRE(r.found);
    REQUIRE(r.ppl_q);
    REQUIRE(r.ppl_base);
    REQUIRE(r.ln_ratio);
    REQUIRE(r.ratio);
    REQUIRE(r.rms_dp);
    REQUIRE(r.same_top);
    CHECK(same(r.ppl_q->value, want["Mean PPL(Q)"][0].get<double>(), 6));
    CHECK(same(r.ppl_q->error, want["Mean PPL(Q)"][1].get<double>(), 6));
    CHECK(same(r.ppl_base->value, want["Mean PPL(base)"][0].get<double>(), 6));
    CHECK(same(r.ln_ratio->value, want["Mean ln(PPL(Q)/PPL(base))"][0].get<double>(), 6));
    CHECK(same(r.ln_ratio->error, want["Mean ln(PPL(Q)/PPL(base))"][1].get<double>(), 6));
    CHECK(same(r.ratio->value, want["Mean PPL(Q)/PPL(base)"][0].get<double>(), 6));
    CHECK(same(r.kld_mean->value, want["Mean    KLD"][0].get<double>(), 6));
    CHECK(same(r.kld_at(100).value(), want["Maximum KLD"][0].get<double>(), 6));
    CHECK(same(r.kld_at(99).value(), want["99.0%   KLD"][0].get<double>(), 6));
    CHECK(same(r.rms_dp->value, want["RMS \u0394p"][0].get<double>(), 3));
    CHECK(same(r.same_top->value, want["Same top p"][0].get<double>(), 3));
    CHECK(same(r.same_top->error, want["Same top p"][1].get<double>(), 3));
    // Every printed percentile, in order, from the maximum down to the minimum.
    REQUIRE(r.kld_quantiles.size() == 11);
    CHECK(r.kld_quantiles.front().first == 100);
    CHECK(r.kld_quantiles.back().first == 0);
    for (std::size_t i = 1; i < r.kld_quantiles.size(); ++i)
      CHECK(r.kld_quantiles[i].second <= r.kld_quantiles[i - 1].second);
    CHECK(r.dp_quantiles.size() == 13);
    // One row per chunk; the last holds the running values after all of them.
    REQUIRE(r.chunks.size() == 20);
    CHECK(same(r.chunks.back().ppl.value, r.ppl_q->value, 4));
    CHECK(same(r.chunks.back().same_top.value, r.same_top->value, 3));
    CHECK(r.n_chunks == 0);  // printed on stderr
    CHECK(parse_kld_log(split_captured(text).err).n_chunks == 20);
    ++checked;
  }
  CHECK(checked == 6);
}

TEST_CASE("llama.cpp logs: kq runs - per-chunk rows end at the final statistics") {
  const auto ref = fq_test::require_shared("reference/kq");
  if (ref.empty()) return;
  const auto j = read_json(ref / "kq-reference.json")["models"];
  for (const std::string q : {"f16", "q4_0", "q4_k_m", "q5_k_m", "q6_k"}) {
    CAPTURE(q);
    const auto& want = j["kq-" + q + ".gguf"];
    const auto ppl =
        parse_perplexity_log(read_text(ref / "llama.cpp-logs" / ("ppl-kq-" + q + ".txt")));
    REQUIRE(ppl.found_final);
    CHECK(same(ppl.ppl, want["ppl_c256_b256_chunks10"][0].get<double>(), 4));
    CHECK(same(ppl.ppl_error, want["ppl_c256_b256_chunks10"][1].get<double>(), 5));
    CHECK(ppl.running.size() == 10);
    CHECK(ppl.n_ctx == 256);
    const auto k = parse_kld_log(read_text(ref / "llama.cpp-logs" / ("kld-kq-" + q + ".txt")));
    REQUIRE(k.found);
    CHECK(same(k.kld_mean->value, want["kld_vs_f16"].get<double>(), 6));
    CHECK(same(k.same_top->value, want["same_top_p_vs_f16"].get<double>(), 3));
    REQUIRE(k.chunks.size() == 10);
    for (std::size_t i = 0; i < k.chunks.size(); ++i) CHECK(k.chunks[i].chunk == i + 1);
    // The last row holds the running values after all chunks: the final statistics, rounded.
    CHECK(same(k.chunks.back().ppl.value, k.ppl_q->value, 4));
    CHECK(same(k.chunks.back().ln_ratio.value, k.ln_ratio->value, 5));
    CHECK(same(k.chunks.back().kld.value, k.kld_mean->value, 5));
    CHECK(same(k.chunks.back().same_top.value, k.same_top->value, 3));
  }
  const auto base = parse_perplexity_log(read_text(ref / "llama.cpp-logs" / "kld-base-kq-f16.txt"));
  // A separate run of llama.cpp: equal to 1e-8 (the two logs differ in the 4th decimal).
  CHECK(std::fabs(base.ppl / j["kq-f16.gguf"]["ppl_c256_b256_chunks10"][0].get<double>() - 1) <
        1e-8);
}

TEST_CASE("llama.cpp logs: merged streams of the KL-divergence base runs") {
  const auto ref = fq_test::require_shared("reference/tl-mini/kld-base");
  if (ref.empty()) return;
  const auto base = parse_perplexity_log(read_text(ref / "base-tl-mini-f32.log"));
  REQUIRE(base.found_final);
  REQUIRE(base.running.size() == 2);
  CHECK(same(base.running.back(), base.ppl, 4));
  CHECK_FALSE(split_captured(read_text(ref / "base-tl-mini-f32.log")).marked);
  for (const char* m : {"f32", "f16", "q8_0", "bf16-blk0-ffn_norm"}) {
    CAPTURE(std::string(m));
    const auto k = parse_kld_log(read_text(ref / (std::string("kld-tl-mini-") + m + ".log")));
    REQUIRE(k.found);
    CHECK(k.n_chunks == 2);
    CHECK(k.n_ctx == 128);
    REQUIRE(k.chunks.size() == 2);
    // The base's own PPL is what the base run printed (both from the same float logits).
    CHECK(std::fabs(k.ppl_base->value / base.ppl - 1) < 1e-3);
    CHECK(same(std::exp(k.ln_ratio->value), k.ratio->value, 5));
    CHECK(same(k.chunks.back().ppl.value, k.ppl_q->value, 4));
  }
}

TEST_CASE("llama.cpp logs: the completion text of every greedy run") {
  const auto ref = fq_test::require_shared("reference/tl-mini");
  if (ref.empty()) return;
  const auto greedy = read_json(ref / "llama.cpp-reference.json")["greedy"];
  std::map<std::string, int> index;
  int checked = 0;
  for (const auto& g : greedy) {
    const auto model = g["model"].get<std::string>();
    const auto stem = model.substr(0, model.size() - 5);  // without .gguf
    const auto file =
        ref / "llama.cpp-logs" / fmt::format("greedy-{}-{}.txt", stem, index[model]++);
    CAPTURE(file.string());
    const auto text = read_text(file);
    const auto cap = split_captured(text);
    REQUIRE(cap.marked);
    CHECK(cap.command.find("-p " + g["prompt"].get<std::string>().substr(0, 5)) !=
          std::string_view::npos);
    const auto r = parse_completion_log(cap.out, cap.err);
    CHECK(r.text == g["continuation"].get<std::string>());
    CHECK(r.generated);
    CHECK_FALSE(r.load_failed);
    CHECK(r.n_predict == std::optional<std::size_t>(24));
    // At most 24 tokens: the first comes from the prompt's evaluation, the rest from eval runs.
    REQUIRE(r.eval_runs.has_value());
    CHECK(*r.eval_runs <= 23);
    CHECK((*r.eval_runs == 23 || r.end_of_text));
    CHECK(r.prompt_tokens.has_value());
    ++checked;
  }
  CHECK(checked == 21);
}

TEST_CASE("llama.cpp logs: end of text, load failures, Windows and prefixed logs") {
  auto r = parse_completion_log(" The end. [end of text]\n\n\n",
                                "llama_model_load: error loading model: x\n");
  CHECK(r.text == " The end.");
  CHECK(r.end_of_text);
  CHECK(r.load_failed);
  CHECK_FALSE(r.generated);
  const auto short_form = parse_completion_log(" The end. [end of text]\n\n", "");
  CHECK(short_form.text == " The end.");
  CHECK(short_form.end_of_text);
  // A generated text may itself end in newlines: only llama-completion's own "\n\n" goes.
  CHECK(parse_completion_log("a\n\n\n", "").text == "a\n");
  const auto neg =
      parse_perplexity_log("[1]5.0,[2]6.0,\nUnexpected negative standard deviation of log(prob)\n");
  CHECK(neg.negative_variance);
  CHECK_FALSE(neg.found_final);
  CHECK(neg.running == std::vector<double>{5.0, 6.0});
  // Current builds prefix stderr lines with a timestamp and a level.
  const auto pre = parse_perplexity_log(
      "0.19.473.633 I perplexity: Final estimate: PPL = 12.3456 +/- 0.07890\n");
  CHECK(pre.found_final);
  CHECK(pre.ppl == 12.3456);
  CHECK(pre.ppl_error == 0.0789);
  // Some Windows consoles show ± as '_'.
  const auto ref = fq_test::require_shared("reference/kq/llama.cpp-logs");
  if (ref.empty()) return;
  auto text = read_text(ref / "kld-kq-q6_k.txt");
  const auto utf8 = parse_kld_log(text);
  std::string win_text;  // every "±" as "_"
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "\xC2\xB1") == 0) {
      win_text.push_back('_');
      ++i;
    } else {
      win_text.push_back(text[i]);
    }
  }
  const auto win = parse_kld_log(win_text);
  REQUIRE(win.found);
  CHECK(win.kld_mean->value == utf8.kld_mean->value);
  CHECK(win.kld_mean->error == utf8.kld_mean->error);
  CHECK(win.same_top->error == utf8.same_top->error);
  CHECK(win.chunks.size() == utf8.chunks.size());
}

TEST_CASE("llama.cpp logs: truncated and damaged logs never crash and never invent a figure") {
  const auto ref = fq_test::require_shared("reference/kq/llama.cpp-logs");
  if (ref.empty()) return;
  const auto kld = read_text(ref / "kld-kq-q4_0.txt");
  const auto ppl = read_text(ref / "ppl-kq-q4_0.txt");
  // Every prefix: the statistics are found only once their line is complete.
  const auto full = parse_kld_log(kld);
  const auto mean_line = kld.find("Mean    KLD:");
  for (std::size_t n = 0; n <= kld.size(); n += 7) {
    const auto r = parse_kld_log(std::string_view(kld).substr(0, n));
    if (n < mean_line) CHECK_FALSE(r.found);
    if (r.found) CHECK(r.kld_mean->value == full.kld_mean->value);
    CHECK(r.chunks.size() <= full.chunks.size());
    const auto p = parse_perplexity_log(std::string_view(ppl).substr(0, n));
    CHECK(p.running.size() <= 10);
  }
  // Random byte damage and random bytes.
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) {
    auto t = round % 2 ? kld : ppl;
    for (int k = 0; k < 20; ++k) t[rng() % t.size()] = static_cast<char>(rng());
    (void)parse_kld_log(t);
    (void)parse_perplexity_log(t);
    (void)split_captured(t);
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = "[]0123456789.,:%\xC2\xB1 \n-+e_chunkPPL="[rng() % 30];
    (void)parse_kld_log(junk);
    (void)parse_perplexity_log(junk);
    const auto cap = split_captured(junk);
    (void)parse_completion_log(cap.out, cap.err);
  }
  CHECK_FALSE(parse_perplexity_log("Final estimate: PPL = nonsense").found_final);
  CHECK_FALSE(parse_perplexity_log("Final estimate: PPL = 5.0").found_final);
  CHECK_FALSE(parse_kld_log("Mean    KLD:   0.5 ± 0.1\n").found);  // outside its block
}

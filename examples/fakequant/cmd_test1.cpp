// SPDX-License-Identifier: MIT
// fakequant test1: the plan of ../shared/docs/test1-plan.md end to end with the built-in evaluator
// — prepare (verified backup), fake-quantize and verify, evaluate (numerical analysis, loading and
// quick inference, conversation, perplexity with KL divergence), decide and report.
#include <fmt/core.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fakequant/decision.hpp>
#include <fakequant/detail/sha256.hpp>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/generate.hpp>
#include <fakequant/llama/kld.hpp>
#include <fakequant/llama/synth.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fakequant/quantize.hpp>
#include <fakequant/stats/diff.hpp>
#include <fakequant/stats/json.hpp>
#include <fakequant/stats/svg.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli.hpp"
#include "interrupt.hpp"
#include "json_util.hpp"
#include "preflight.hpp"

namespace fqcli {
namespace {

namespace fs = std::filesystem;

struct test1_args {
  std::string model, text, workdir = "fakequant-test1", tensors = "blk.0.ffn_norm.weight",
                           format = "bf16", name = "layer0", store = "same", lang = "en";
  std::size_t threads = 0, ctx = 512, batch = 8, chunks = 0;
  std::uint64_t seed = 42;
  bool demo = false, no_early_stop = false, until_confident = false;
  std::string command_line;
};

// Every step with its command, duration and result, appended as it happens.
class run_log {
 public:
  explicit run_log(fs::path p) : path_(std::move(p)), out_(path_, std::ios::app) {}
  template <class F>
  auto step(const std::string& what, F&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    fmt::print(stderr, "test1: {} …\n", what);
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        done(what, t0, "ok");
      } else {
        auto r = f();
        done(what, t0, "ok");
        return r;
      }
    } catch (const std::exception& e) {
      done(what, t0, std::string("FAILED: ") + e.what());
      throw;
    }
  }
  void note(const std::string& line) {
    out_ << line << "\n";
    out_.flush();
  }

 private:
  void done(const std::string& what, std::chrono::steady_clock::time_point t0,
            const std::string& result) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out_ << fmt::format("{:<60} {:8.2f} s  {}\n", what, s, result);
    out_.flush();
  }
  fs::path path_;
  std::ofstream out_;
};

std::string sha256_of(const fs::path& p) {
  const auto m = fq::gguf::mapped_file::open(p.string());
  fq::detail::sha256 h;
  h.update(m.bytes());
  return h.hex();
}

// Copies `from` to `to` through a temporary file, unless `to` already holds the same bytes.
bool backup(const fs::path& from, const fs::path& to) {
  if (fs::exists(to) && fs::file_size(to) == fs::file_size(from) &&
      sha256_of(to) == sha256_of(from))
    return false;  // reused
  const auto src = fq::gguf::mapped_file::open(from.string());
  fq::atomic_file out(to);
  out.copy_from(src.fd(), 0, src.bytes());
  out.commit();
  if (sha256_of(to) != sha256_of(from))
    throw fq::error(fq::errc::io_error, to.string(),
                    "the backup's SHA-256 differs from the original's");
  return true;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw fq::error(fq::errc::not_found, p.string(), "cannot open the text file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

constexpr const char* demo_text =
    "The quick brown fox jumps over the lazy dog. Fake quantization rounds each weight to a "
    "narrower "
    "format and stores it back as float32, so the model keeps its structure and any runtime loads "
    "it "
    "unchanged. The experiment measures what the rounding does to the model.\n";

// Both models over the same chunks: per-token negative log-likelihoods and the KL divergence of
// the fake-quantized model against the original, exact (float32 log-probabilities in memory).
struct paired_eval {
  fq::llama::perplexity_result a, b;
  fq::llama::kld_result kld;
  std::vector<double> chunk_delta;  // per chunk: mean nll(b) − mean nll(a)
};

paired_eval evaluate_pair(const fq::llama::model& ma, const fq::llama::model& mb,
                          const std::vector<std::int32_t>& tokens,
                          const fq::llama::perplexity_options& o, bool until_confident) {
  paired_eval r;
  fq::llama::kld_accumulator acc;
  const std::size_t first = o.n_ctx / 2;
  std::vector<std::vector<float>> base;  // log-probabilities of the original, one chunk
  auto keep = [&](std::size_t, std::size_t j, std::span<const float> logits) {
    const std::size_t k = j - first;
    if (base.size() <= k) base.resize(k + 1);
    base[k].resize(logits.size());
    fq::llama::log_softmax(logits, base[k]);
  };
  const std::size_t n_chunks =
      std::min(o.max_chunks ? o.max_chunks : tokens.size() / o.n_ctx, tokens.size() / o.n_ctx);
  // Chunk by chunk, so the original's log-probabilities of one chunk are all that is kept. The
  // chunk is given twice (perplexity() wants two chunks of text) and only the first is evaluated.
  for (std::size_t c = 0; c < n_chunks; ++c) {
    auto oc = o;
    oc.max_chunks = 1;
    std::vector<std::int32_t> chunk(
        tokens.begin() + static_cast<std::ptrdiff_t>(c * o.n_ctx),
        tokens.begin() + static_cast<std::ptrdiff_t>((c + 1) * o.n_ctx));
    chunk.insert(chunk.end(), chunk.begin(), chunk.end());
    const auto ra = fq::llama::perplexity(ma, chunk, oc, {}, keep);
    const auto rb = fq::llama::perplexity(
        mb, chunk, oc, {}, [&](std::size_t, std::size_t j, std::span<const float> l) {
          fq::llama::base_record rec;
          rec.logp = base[j - first];
          acc.add(l, rec, static_cast<std::size_t>(chunk[j + 1]));
        });
    r.a.tokens.insert(r.a.tokens.end(), ra.tokens.begin(), ra.tokens.end());
    r.b.tokens.insert(r.b.tokens.end(), rb.tokens.begin(), rb.tokens.end());
    r.chunk_delta.push_back(rb.chunk_mean_nll[0] - ra.chunk_mean_nll[0]);
    if (::isatty(2)) fmt::print(stderr, "\rperplexity: chunk {}/{}", c + 1, n_chunks);
    if (until_confident && fq::decision::confident(r.chunk_delta)) break;
  }
  if (::isatty(2)) fmt::print(stderr, "\n");
  const std::size_t done = r.chunk_delta.size();
  auto finish = [&](fq::llama::perplexity_result& p) {
    double s = 0, s2 = 0;
    for (const auto& t : p.tokens) s += t.nll, s2 += static_cast<double>(t.nll) * t.nll;
    const double n = static_cast<double>(p.tokens.size()), mean = s / n;
    p.n_ctx = o.n_ctx;
    p.n_chunks = done;
    p.scored = p.tokens.size();
    p.ppl = std::exp(mean);
    const double var = s2 / n - mean * mean;
    p.error_valid = var > 0 && n > 1;
    p.ppl_error = p.error_valid ? std::sqrt(var / (n - 1)) * p.ppl : 0;
  };
  finish(r.a);
  finish(r.b);
  r.kld = acc.result();
  return r;
}

void run(const test1_args& a) {
  const fs::path dir = a.workdir, data = dir / "data", results = dir / "results" / a.name;
  // One run per work folder; bad inputs refused before anything is copied (interrupt.hpp,
  // preflight.hpp).
  const auto lock = lock_workdir(dir);
  fs::create_directories(data);
  fs::create_directories(results);
  run_log log(results / "run.log");
  log.note("# fakequant test1 — " + a.command_line);
  fq::decision::must_pass must;
  nlohmann::json summary{
      {"command", a.command_line}, {"name", a.name}, {"format", a.format}, {"tensors", a.tensors}};

  // Phase 1: prepare.
  fs::path model_src = a.model, text_src = a.text;
  auto o = fq::llama::perplexity_options{};
  o.n_ctx = a.ctx;
  o.n_batch = a.batch;
  o.max_chunks = a.chunks;
  if (a.demo) {
    if (model_src.empty()) {
      model_src = data / "demo_model.gguf";
      log.step("synth a demo model (tiny preset)",
               [&] { fq::llama::synth(fq::llama::synth_preset("tiny"), {}, model_src); });
    }
    if (text_src.empty()) {
      text_src = data / "demo_text.txt";
      std::string t;
      for (int i = 0; i < 40; ++i) t += demo_text;
      write_text_file(text_src, t);
    }
    if (a.ctx == 512) o.n_ctx = 128;
  }
  if (model_src.empty()) throw CLI::ValidationError("--model", "a model is required (or --demo)");
  if (text_src.empty()) throw CLI::ValidationError("--text", "a text file is required (or --demo)");
  check_experiment_inputs(model_src.string(), text_src.string(), a.tensors, a.format,
                          a.demo ? 0 : 2 * o.n_ctx);
  const auto original = data / "original_model.gguf";
  const auto text_copy = data / text_src.filename();
  log.step("back up the original model (SHA-256 checked)", [&] {
    const bool copied = backup(model_src, original);
    log.note(copied ? "  copied " + model_src.string() : "  reused the verified backup");
  });
  if (fs::absolute(text_src) != fs::absolute(text_copy))
    write_text_file(text_copy, read_file(text_src));
  const auto kernels = fq::llama::best_kernels();
  summary["environment"] = {
      {"kernels", kernels.name},
      {"threads", a.threads ? a.threads : std::thread::hardware_concurrency()},
      {"fakequant", fmt::format("{}.{}.{}", FQ_VERSION_MAJOR, FQ_VERSION_MINOR, FQ_VERSION_PATCH)}};
  o.eval.threads = a.threads;
  o.eval.kernels = kernels;

  // Phase 2: fake-quantize and verify.
  const auto fake = data / ("fake_quant_" + a.name + ".gguf");
  const auto fa = fq::gguf::file::open(original.string());
  fq::quantize_options qo;
  qo.format = fq::format::format_from_name(a.format);
  qo.rounding.overflow = qo.format.default_overflow();
  qo.store = a.store == "f32" ? fq::store_policy::f32 : fq::store_policy::same;
  const auto patterns = fq::gguf::split_patterns(a.tensors);
  const auto quantized = log.step("fake-quantize " + a.tensors + " to " + a.format, [&] {
    auto b = fq::gguf::builder::from(fa);
    auto q = fq::fake_quantize_tensors(fa, b, patterns, qo);
    b.write(fake);
    return q;
  });
  const auto fb = fq::gguf::file::open(fake.string());
  std::vector<std::string> problems;
  log.step("verify the fake-quantized file", [&] {
    problems = fq::verify_fake_quantized(fa, fb, patterns, qo);
    for (const auto& p : problems) log.note("  verify: " + p);
  });
  summary["verification"] = problems;
  must.format_correct = problems.empty();

  // Phase 3: numerical analysis.
  const auto report = log.step("numerical analysis", [&] {
    fq::stats::diff_options d;
    d.tensors = a.tensors;
    return fq::stats::diff_files(fa, fb, d);
  });
  write_text_file(results / "numerical_analysis.json", dump(fq::stats::to_json(report)));
  fs::create_directories(results / "svg");
  for (const auto& t : report.tensors)
    write_text_file(results / "svg" / (t.name + ".svg"), fq::stats::to_svg(t));
  double mean_rel = 0, max_rel = 0;
  bool nan_inf = false;
  for (const auto& t : report.tensors) {
    mean_rel = std::max(mean_rel, t.paired.mean_rel_diff);
    max_rel = std::max(max_rel, t.paired.max_rel_diff);
    nan_inf |= t.paired.nan_b + t.paired.inf_b > 0;
  }
  must.stable = !nan_inf;
  const auto numerical = fq::decision::numerical_band(mean_rel, max_rel, nan_inf);
  summary["numerical"] = {{"mean_rel_diff", mean_rel},
                          {"max_rel_diff", max_rel},
                          {"nan_or_inf", nan_inf},
                          {"band", fq::decision::to_string(numerical)}};

  auto finish = [&](fq::decision::scenario conv, fq::decision::scenario ppl,
                    const std::string& why) {
    const auto out = fq::decision::decide(must, numerical, conv, ppl);
    summary["must_pass"] = {{"loads", must.loads},
                            {"inference", must.inference},
                            {"stable", must.stable},
                            {"format_correct", must.format_correct}};
    summary["scenario"] = fq::decision::to_string(out.overall);
    summary["decision"] = fq::decision::to_string(out.decision);
    if (!why.empty()) summary["stopped_early"] = why;
    // The report in the language asked for (the plan itself is in Traditional Chinese).
    const bool zh = a.lang == "zh-TW";
    auto T = [zh](const char* en, const char* tw) { return fmt::runtime(zh ? tw : en); };
    auto word = [zh](std::string_view w) -> std::string {
      if (!zh) return std::string(w);
      if (w == "GO") return "GO（繼續進行測試二至四）";
      if (w == "CAUTION") return "CAUTION（謹慎繼續或調整方法）";
      if (w == "STOP") return "STOP（停止實驗，檢討方法）";
      if (w == "optimistic") return "樂觀";
      if (w == "medium") return "中等";
      if (w == "pessimistic") return "悲觀";
      if (w == "PASS") return "通過";
      if (w == "FAIL") return "未通過";
      return std::string(w);
    };
    auto pass = [&](bool ok) { return word(ok ? "PASS" : "FAIL"); };
    std::string md = fmt::format(
        T("# Test 1 — {} rounded to {}\n\n", "# 測試一 — {} 假量化為 {}\n\n"), a.tensors, a.format);
    md += fmt::format(T("**Decision: {}** (scenario: {})\n\n", "**決策：{}**（情境：{}）\n\n"),
                      word(fq::decision::to_string(out.decision)),
                      word(fq::decision::to_string(out.overall)));
    if (!why.empty()) md += fmt::format(T("Stopped early: {}\n\n", "提前停止：{}\n\n"), why);
    md += fmt::format(
        T("| must-pass check | result |\n|---|---|\n", "| 必須通過的檢查 | 結果 |\n|---|---|\n"));
    md += fmt::format(
        T("| model loads | {} |\n| basic inference | {} |\n| no NaN or Inf | {} |\n| structure "
          "matches the original | {} |\n\n",
          "| 模型可正常載入 | {} |\n| 基本推理產生合理輸出 | {} |\n| 數值穩定（無 NaN 或 Inf） | "
          "{} |\n"
          "| 格式正確（結構與原模型一致） | {} |\n\n"),
        pass(must.loads), pass(must.inference), pass(must.stable), pass(must.format_correct));
    md += fmt::format(T("| criterion | figure | rule | band |\n|---|---|---|---|\n",
                        "| 標準 | 數據 | 規則 | 等級 |\n|---|---|---|---|\n"));
    md += fmt::format(
        T("| numerical | mean rel. diff {:.4f} %, max {:.4f} % | mean < 1 %, max < 10 % | {} |\n",
          "| 數值差異 | 平均相對差異 {:.4f} %，最大 {:.4f} % | 平均 < 1 %，最大 < 10 % | {} |\n"),
        100 * mean_rel, 100 * max_rel, word(fq::decision::to_string(numerical)));
    if (summary.contains("conversation"))
      md += fmt::format(
          T("| conversation | agreement {:.3f}, {} check failures | no failure, agreement ≥ 0.5 | "
            "{} |\n",
            "| 對話 | 一致度 {:.3f}，{} 項檢查未通過 | 無檢查未通過且一致度 ≥ 0.5 | {} |\n"),
          summary["conversation"]["agreement"].get<double>(),
          summary["conversation"]["failures"].get<std::size_t>(),
          word(fq::decision::to_string(conv)));
    if (summary.contains("perplexity"))
      md += fmt::format(
          T("| perplexity | increase {:+.4f} % (95 % CI {:+.4f} … {:+.4f} %) | < 1 % ideal, < 5 % "
            "acceptable | {} |\n",
            "| 困惑度 | 增加 {:+.4f} %（95 % 信賴區間 {:+.4f} … {:+.4f} %） | < 1 % 理想，< 5 % "
            "可接受 | {} |\n"),
          100 * summary["perplexity"]["increase"].get<double>(),
          100 * summary["perplexity"]["increase_ci95"][0].get<double>(),
          100 * summary["perplexity"]["increase_ci95"][1].get<double>(),
          word(fq::decision::to_string(ppl)));
    if (summary.contains("kld"))
      md += fmt::format(
          T("\nKL divergence {:.6f}, 99 % {:.6f}, max {:.6f}; same top token {:.3f} %.\n",
            "\nKL 散度 {:.6f}，99 % {:.6f}，最大 {:.6f}；首選詞元相同比例 {:.3f} %。\n"),
          summary["kld"]["mean"].get<double>(), summary["kld"]["p99"].get<double>(),
          summary["kld"]["max"].get<double>(), 100 * summary["kld"]["same_top_p"].get<double>());
    if (summary.contains("perplexity") && summary["perplexity"]["increase"].get<double>() < 0 &&
        summary["kld"]["mean"].get<double>() > 1e-3)
      md += fmt::format(
          T("\nNote: perplexity went down while the KL divergence shows the output distribution "
            "changed; perplexity alone understates the change.\n",
            "\n注意：困惑度下降，但 KL 散度顯示輸出分佈已改變；僅看困惑度會低估變化。\n"));
    write_text_file(results / "test1_summary.md", md);
    write_text_file(results / "test1_summary.json", dump(summary));
    log.note("decision: " + std::string(fq::decision::to_string(out.decision)));
    fmt::print("{}", md);
  };
  if (!must.format_correct ||
      (numerical == fq::decision::scenario::pessimistic && !a.no_early_stop)) {
    finish(fq::decision::scenario::pessimistic, fq::decision::scenario::pessimistic,
           a.lang == "zh-TW" ? (must.format_correct ? "數值差異過大" : "驗證失敗")
                             : (must.format_correct ? "the numerical difference is too large"
                                                    : "verification failed"));
    return;
  }

  // Phase 3: loading, quick inference, conversation.
  fq::llama::eval_options eo;
  eo.threads = a.threads;
  eo.kernels = kernels;
  const auto ma = fq::llama::model::load(fa);
  const auto mb =
      log.step("load the fake-quantized model", [&] { return fq::llama::model::load(fb); });
  const auto tok = fq::llama::tokenizer::from_file(fa);
  std::string conv_txt;
  std::size_t failures = 0;
  double agreement_sum = 0;
  std::size_t units = 0;
  auto run_prompt = [&](const fq::llama::model& m, const std::vector<std::int32_t>& prompt,
                        std::size_t n, float temp, fq::llama::context& ctx) {
    fq::llama::generate_options g;
    g.n_predict = n;
    g.sampling.temp = temp;
    g.sampling.seed = a.seed;
    g.eos = tok.eos();
    (void)m;
    return fq::llama::generate(ctx, prompt, g);
  };
  auto text_of = [&](const fq::llama::generation_result& r) {
    std::string t;
    for (const auto& g : r.tokens) t += tok.token_to_piece(g.id);
    return t;
  };
  auto ids_of = [](const fq::llama::generation_result& r) {
    std::vector<std::int32_t> v;
    for (const auto& g : r.tokens) v.push_back(g.id);
    return v;
  };
  log.step("quick inference: \"Hello\" -n 5", [&] {
    for (const auto* m : {&ma, &mb}) {
      fq::llama::context ctx(*m, 64, eo);
      const auto r = run_prompt(*m, tok.encode("Hello", true, true), 5, 0.0f, ctx);
      must.inference &= !r.tokens.empty();
    }
  });
  struct prompt_spec {
    const char* text;
    std::size_t n;
    float temp;
  };
  const prompt_spec prompts[] = {{"Hello, can you introduce yourself?", 50, 0.7f},
                                 {"你好，請介紹一下自己。", 50, 0.7f},
                                 {"2+2等於多少？", 20, 0.1f}};
  log.step("conversation tests", [&] {
    const std::size_t n_ctx =
        std::min<std::size_t>(ma.params().n_ctx_train ? ma.params().n_ctx_train : 512, 512);
    for (const auto& p : prompts) {
      const auto ids = tok.encode(p.text, true, true);
      std::vector<fq::llama::generation_result> sampled, greedy;
      for (const auto* m : {&ma, &mb}) {
        fq::llama::context c1(*m, n_ctx, eo), c2(*m, n_ctx, eo);
        sampled.push_back(run_prompt(*m, ids, p.n, p.temp, c1));
        greedy.push_back(run_prompt(*m, ids, p.n, 0.0f, c2));
      }
      const auto ca = fq::decision::check_output(text_of(sampled[0]), ids_of(sampled[0]), true);
      const auto cb = fq::decision::check_output(text_of(sampled[1]), ids_of(sampled[1]), true);
      failures += fq::decision::failures_against(ca, cb);
      const double ag = fq::decision::agreement(ids_of(greedy[0]), ids_of(greedy[1]));
      agreement_sum += ag;
      ++units;
      conv_txt += fmt::format(
          "## {} (-n {} --temp {} --seed {})\n\noriginal:       {}\nfake-quantized: {}\n\n"
          "greedy original:       {}\ngreedy fake-quantized: {}\nagreement: {:.3f}\n\n",
          p.text, p.n, p.temp, a.seed, text_of(sampled[0]), text_of(sampled[1]), text_of(greedy[0]),
          text_of(greedy[1]), ag);
    }
    // The multi-turn chat: greedy, the whole conversation kept in context.
    const char* turns[] = {"讓我們聊聊天吧。", "你最喜歡什麼季節？為什麼？",
                           "請用一句話總結我們剛才聊了什麼。"};
    std::vector<std::vector<std::vector<std::int32_t>>> answers(2);
    conv_txt += "## multi-turn chat (-n 30 per answer, greedy)\n\n";
    for (int mi = 0; mi < 2; ++mi) {
      const auto& m = mi == 0 ? ma : mb;
      fq::llama::context ctx(m, n_ctx, eo);
      std::int32_t pending = -1;
      for (int t = 0; t < 3; ++t) {
        auto ids = tok.encode(turns[t], t == 0, true);
        if (pending >= 0 && pending != tok.eos()) ids.insert(ids.begin(), pending);
        const auto r = run_prompt(m, ids, 30, 0.0f, ctx);
        pending = r.tokens.empty() ? -1 : r.tokens.back().id;
        answers[mi].push_back(ids_of(r));
        conv_txt += fmt::format("{} turn {}: {}\n{}\n", mi == 0 ? "original" : "fake-quantized",
                                t + 1, turns[t], text_of(r));
      }
    }
    for (int t = 0; t < 3; ++t) {
      const double ag = fq::decision::agreement(answers[0][t], answers[1][t]);
      agreement_sum += ag;
      ++units;
      conv_txt += fmt::format("turn {} agreement: {:.3f}\n", t + 1, ag);
    }
  });
  const double agreement = agreement_sum / static_cast<double>(units);
  write_text_file(results / "conversation_tests.txt", conv_txt);
  const auto conv = fq::decision::conversation_band(failures, agreement);
  summary["conversation"] = {
      {"agreement", agreement}, {"failures", failures}, {"band", fq::decision::to_string(conv)}};

  // Phase 3: perplexity and KL divergence on the text.
  const auto text = read_file(text_copy);
  const auto tokens = tok.encode(text, true, false);
  if (tokens.size() < 2 * o.n_ctx)
    throw fq::error(
        fq::errc::invalid_argument, text_copy.string(),
        fmt::format("the text has {} tokens; perplexity at context {} needs at least {}",
                    tokens.size(), o.n_ctx, 2 * o.n_ctx));
  const auto pe = log.step("perplexity and KL divergence of both models",
                           [&] { return evaluate_pair(ma, mb, tokens, o, a.until_confident); });
  const double increase = pe.b.ppl / pe.a.ppl - 1;
  const std::size_t nc = pe.chunk_delta.size();
  const auto ci95 = fq::decision::ratio_interval(pe.chunk_delta, 0.95);
  const auto ci99 = fq::decision::ratio_interval(pe.chunk_delta, 0.99);
  if (a.until_confident)
    log.note(fmt::format(
        "  --until-confident: {} chunks, 99 % interval {:+.4f} … {:+.4f} %{}", nc, 100 * ci99.lo,
        100 * ci99.hi,
        fq::decision::confident(pe.chunk_delta) ? " (one band)" : " (not yet one band)"));
  const auto ppl_band = fq::decision::perplexity_band(increase);
  summary["perplexity"] = {{"original", {pe.a.ppl, pe.a.ppl_error}},
                           {"fake", {pe.b.ppl, pe.b.ppl_error}},
                           {"increase", increase},
                           {"increase_ci95", {ci95.lo, ci95.hi}},
                           {"increase_ci99", {ci99.lo, ci99.hi}},
                           {"until_confident", a.until_confident},
                           {"chunks", nc},
                           {"n_ctx", o.n_ctx},
                           {"band", fq::decision::to_string(ppl_band)}};
  summary["kld"] = {{"mean", pe.kld.kld_mean},
                    {"p99", pe.kld.kld_99},
                    {"max", pe.kld.kld_max},
                    {"same_top_p", pe.kld.same_top}};
  write_text_file(
      results / "perplexity_comparison.txt",
      fmt::format(
          "original:       PPL = {:.4f} +/- {:.5f}\nfake-quantized: PPL = {:.4f} +/- {:.5f}\n"
          "increase: {:+.6f} ({:+.4f} %), 95 % interval of the paired per-chunk difference: "
          "{:+.4f} … {:+.4f} % over {} chunks\n"
          "KL divergence: mean {:.6f} ± {:.6f}, 99 % {:.6f}, max {:.6f}; same top p {:.3f} %\n"
          "commands: fakequant perplexity -m {} -f {} -c {} -b {}{} (and the same with {})\n",
          pe.a.ppl, pe.a.ppl_error, pe.b.ppl, pe.b.ppl_error, pe.b.ppl - pe.a.ppl, 100 * increase,
          100 * ci95.lo, 100 * ci95.hi, nc, pe.kld.kld_mean, pe.kld.kld_err, pe.kld.kld_99,
          pe.kld.kld_max, 100 * pe.kld.same_top, original.string(), text_copy.string(), o.n_ctx,
          o.n_batch, o.max_chunks ? " --chunks " + std::to_string(o.max_chunks) : "",
          fake.string()));
  finish(conv, ppl_band, "");
}

}  // namespace

void register_test1(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "test1", "The test-1 plan end to end: prepare, fake-quantize, verify, evaluate, decide");
  auto a = std::make_shared<test1_args>();
  cmd->add_option("--model", a->model, "the original GGUF model (never written)");
  cmd->add_option("--text", a->text, "perplexity text (the plan: wiki.test.small.raw)");
  cmd->add_option("--workdir", a->workdir, "experiment folder (data/ and results/NAME/)");
  cmd->add_option("--tensors", a->tensors, "tensors to fake-quantize (names or globs)");
  cmd->add_option("--format", a->format, "target format");
  cmd->add_option("--name", a->name, "experiment name (results/NAME, fake_quant_NAME.gguf)");
  cmd->add_option("--threads", a->threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--ctx-size", a->ctx, "perplexity context")->check(CLI::Range(8, 1 << 20));
  cmd->add_option("--batch-size", a->batch, "perplexity batch")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--chunks", a->chunks, "perplexity chunks (default: all)")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--seed", a->seed, "seed of the sampled conversation runs");
  cmd->add_option("--store", a->store, "same or f32")->check(CLI::IsMember({"same", "f32"}));
  cmd->add_option("--lang", a->lang, "report language: en or zh-TW (Traditional Chinese)")
      ->check(CLI::IsMember({"en", "zh-TW"}));
  cmd->add_flag("--until-confident", a->until_confident,
                "stop the perplexity runs, after at least 4 chunks, once the 99 % interval of the "
                "increase lies in one band");
  cmd->add_flag("--no-early-stop", a->no_early_stop,
                "evaluate even when the numerical analysis says stop");
  cmd->add_flag("--demo", a->demo,
                "a synthesized model and a built-in text: the whole pipeline in seconds");
  cmd->callback([a] {
    a->command_line = fmt::format(
        "fakequant test1 --model {} --text {} --workdir {} --tensors {} --format {} --name {} "
        "--ctx-size {} "
        "--batch-size {}{}{}",
        a->model.empty() ? "(demo)" : a->model, a->text.empty() ? "(demo)" : a->text, a->workdir,
        a->tensors, a->format, a->name, a->ctx, a->batch,
        a->chunks ? " --chunks " + std::to_string(a->chunks) : "", a->demo ? " --demo" : "");
    run(*a);
  });
}

}  // namespace fqcli

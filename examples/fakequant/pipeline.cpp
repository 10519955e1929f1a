// SPDX-License-Identifier: MIT
// The phases of the test-1 plan, shared by fakequant test1 and fakequant sweep (pipeline.hpp).
#include "pipeline.hpp"

#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fakequant/equal_bytes.hpp>
#include <fakequant/format/scaling.hpp>
#include <fakequant/llama/generate.hpp>
#include <fakequant/llama/kld.hpp>
#include <fakequant/llama/synth.hpp>
#include <fakequant/sha256.hpp>
#include <fakequant/stats/diff.hpp>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/json.hpp>
#include <fakequant/stats/svg.hpp>
#include <future>
#include <optional>
#include <thread>
#include <utility>

#include "cli.hpp"
#include "json_util.hpp"
#include "messages.hpp"

namespace fqcli::pipeline {

run_log::run_log(fs::path p) : path_(std::move(p)), out_(path_, std::ios::app) {}

void run_log::note(const std::string& line) {
  out_ << line << "\n";
  out_.flush();
}

void run_log::begin(const std::string& what) { fmt::print(stderr, "fakequant: {} …\n", what); }

void run_log::done(const std::string& what, std::chrono::steady_clock::time_point t0,
                   const std::string& result) {
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out_ << fmt::format("{:<60} {:8.2f} s  {}\n", what, s, result);
  out_.flush();
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw fq::error(fq::errc::not_found, p.string(), "cannot open the file");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

namespace {

std::string sha256_of(const fs::path& p) {
  const auto m = fq::gguf::mapped_file::open(p.string());
  fq::sha256 h;
  h.update(m.bytes());
  return h.hex();
}

// The digest in BACKUP.sha256 when that record is newer than the last change of the original and of
// the backup: their status-change times, which no one can set back, say whether either file was
// written, replaced or touched since the digest was computed.
std::optional<std::string> recorded_sha256(const fs::path& original, const fs::path& backup) {
  const std::string record = backup.string() + ".sha256";
  struct stat r {
  }, o{}, b{};
  if (::stat(record.c_str(), &r) != 0 || ::stat(original.c_str(), &o) != 0 ||
      ::stat(backup.c_str(), &b) != 0)
    return std::nullopt;
  const auto newer = [](const timespec& x, const timespec& y) {
    return x.tv_sec != y.tv_sec ? x.tv_sec > y.tv_sec : x.tv_nsec > y.tv_nsec;
  };
  if (!newer(r.st_mtim, o.st_ctim) || !newer(r.st_mtim, b.st_ctim)) return std::nullopt;
  std::ifstream in(record);
  std::string digest, name;
  if (!(in >> digest >> name) || digest.size() != 64 ||
      digest.find_first_not_of("0123456789abcdef") != std::string::npos ||
      name != backup.filename().string())
    return std::nullopt;
  return digest;
}

bool same_bytes(const fs::path& a, const fs::path& b) {
  if (fs::file_size(a) != fs::file_size(b)) return false;
  const auto ma = fq::gguf::mapped_file::open(a.string());
  const auto mb = fq::gguf::mapped_file::open(b.string());
  fq::thread_pool pool;
  return fq::equal_bytes(ma.bytes(), mb.bytes(), &pool);
}

// Copies `from` to `to` through a temporary file, unless `to` already holds the same bytes; either
// way the backup is compared byte for byte with the original (after the copy is flushed), so
// nothing about it is taken on trust. A full comparison proves more than comparing two digests
// and reads each file once; the original's SHA-256 is recorded beside it (record_sha256).
bool backup(const fs::path& from, const fs::path& to) {
  if (fs::exists(to) && same_bytes(from, to)) return false;  // reused
  const auto src = fq::gguf::mapped_file::open(from.string());
  fq::atomic_file out(to);
  out.copy_from(src.fd(), 0, src.bytes());
  out.commit();
  if (!same_bytes(from, to))
    throw fq::error(fq::errc::io_error, to.string(),
                    "the backup differs from the original after copying");
  return true;
}

constexpr const char* demo_text =
    "The quick brown fox jumps over the lazy dog. Fake quantization rounds each weight to a "
    "narrower format and stores it back as float32, so the model keeps its structure and any "
    "runtime loads it unchanged. The experiment measures what the rounding does to the model.\n";

}  // namespace

fq::quantize_options quantize_options_of(const experiment& e) {
  fq::quantize_options qo;
  qo.format = e.format;
  qo.rounding.rounding = e.rounding;
  qo.rounding.overflow = e.overflow.value_or(e.format.default_overflow());
  qo.scale = e.scale;
  qo.store = e.store;
  return qo;
}

prepared prepare(const common_args& a, run_log& log) {
  prepared p;
  p.data = fs::path(a.workdir) / "data";
  fs::create_directories(p.data);
  fs::path model_src = a.model, text_src = a.text;
  p.ppl.n_ctx = a.ctx;
  p.ppl.n_batch = a.batch;
  p.ppl.max_chunks = a.chunks;
  if (a.demo) {
    if (model_src.empty()) {
      model_src = p.data / "demo_model.gguf";
      log.step("synth a demo model (tiny preset)",
               [&] { fq::llama::synth(fq::llama::synth_preset("tiny"), {}, model_src); });
    }
    if (text_src.empty()) {
      text_src = p.data / "demo_text.txt";
      std::string t;
      for (int i = 0; i < 40; ++i) t += demo_text;
      write_text_file(text_src, t);
    }
    if (a.ctx == 512) p.ppl.n_ctx = 128;
  }
  if (model_src.empty()) throw CLI::ValidationError("--model", "a model is required (or --demo)");
  if (text_src.empty()) throw CLI::ValidationError("--text", "a text file is required (or --demo)");
  p.original = p.data / "original_model.gguf";
  p.text = p.data / text_src.filename();
  // A digest an earlier run recorded still holds when neither file has changed since; otherwise the
  // original is hashed on its own thread while the backup is copied and phase 2 runs.
  auto recorded = recorded_sha256(model_src, p.original);
  const auto hash_original = [&] {
    p.sha256 = std::async(std::launch::async, [src = model_src] { return sha256_of(src); }).share();
  };
  if (!recorded) hash_original();
  log.step("back up the original model (compared in full)", [&] {
    const bool copied = backup(model_src, p.original);
    log.note(copied ? "  copied " + model_src.string() +
                          " (the copy compared byte for byte with the original)"
                    : "  reused the verified backup (compared byte for byte with the original)");
    if (copied && recorded) {  // the record does not describe this backup: hash afresh
      recorded.reset();
      hash_original();
    }
  });
  if (recorded) {
    std::promise<std::string> ready;
    ready.set_value(*recorded);
    p.sha256 = ready.get_future().share();
    p.sha256_recorded = true;
  }
  if (fs::absolute(text_src) != fs::absolute(p.text)) write_text_file(p.text, read_file(text_src));
  const auto kernels = fq::llama::best_kernels();
  p.environment = {
      {"kernels", kernels.name},
      {"threads", a.threads ? a.threads : std::thread::hardware_concurrency()},
      {"backend", name_of(a.backend)},
      {"fakequant", fmt::format("{}.{}.{}", FQ_VERSION_MAJOR, FQ_VERSION_MINOR, FQ_VERSION_PATCH)}};
  if (a.llama_cpp()) p.environment["llama_cpp_dir"] = a.llama_cpp_dir;
  p.ppl.eval.threads = a.threads;
  p.ppl.eval.kernels = kernels;
  return p;
}

void add_evaluation_options(CLI::App& cmd, common_args& a) {
  // The values are checked by the command line (a usage error) before they are parsed.
  cmd.add_option_function<std::string>(
         "--backend", [&a](const std::string& s) { a.backend = parse_backend(s); },
         "builtin (fakequant's evaluator) or llama.cpp")
      ->check(member_of(backend_names));
  cmd.add_option("--llama-cpp-dir", a.llama_cpp_dir,
                 "llama.cpp build folder (with llama-completion and llama-perplexity)");
  cmd.add_option("--threads", a.threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd.add_option("--ctx-size", a.ctx, "perplexity context")->check(CLI::Range(8, 1 << 20));
  cmd.add_option("--batch-size", a.batch, "perplexity batch")->check(CLI::Range(1, 1 << 20));
  cmd.add_option("--chunks", a.chunks, "perplexity chunks (default: all)")
      ->check(CLI::Range(1, 1 << 30));
  cmd.add_option("--seed", a.seed, "seed of the sampled conversation runs");
  cmd.add_option_function<std::string>(
         "--lang", [&a](const std::string& s) { a.lang = parse_language(s); },
         "report language: en or zh-TW (Traditional Chinese)")
      ->check(member_of(language_names));
}

void check_evaluation_options(const common_args& a) {
  if (a.llama_cpp() && a.until_confident)
    throw CLI::ValidationError("--until-confident",
                               "needs --backend builtin (llama-perplexity's KL-divergence mode "
                               "reads every chunk of its base file)");
}

void record_sha256(prepared& p, run_log& log) {
  if (!p.sha256.valid() || p.environment.contains("original_sha256")) return;
  const std::string digest = p.sha256.get();
  p.environment["original_sha256"] = digest;
  fq::atomic_file out(p.original.string() + ".sha256");  // `sha256sum -c` reads it
  out.write(digest + "  " + p.original.filename().string() + "\n");
  out.commit();
  log.note(
      "  SHA-256 of the original: " + digest + " (" +
      (p.sha256_recorded ? "recorded by an earlier run; neither file has changed since, " : "") +
      "also in " + p.original.filename().string() + ".sha256)");
}

quantized quantize_and_analyse(const fq::gguf::file& fa, const experiment& e, const fs::path& data,
                               const fs::path& results, run_log& log) {
  quantized q;
  q.fake = data / ("fake_quant_" + e.name + ".gguf");
  const auto qo = quantize_options_of(e);
  const auto patterns = fq::gguf::split_patterns(e.tensors);
  // An earlier run's output is moved aside and deleted on another thread while the new one is
  // written: freeing 2 GB of blocks keeps ext4 busy for about half a second. The aside name carries
  // the temporary marker, so an interrupted run's next start removes it.
  std::future<void> retired;
  if (fs::exists(q.fake)) {
    const auto aside =
        data / ("." + q.fake.filename().string() + std::string(fq::atomic_file::temp_marker) +
                "old-" + std::to_string(::getpid()));
    fs::rename(q.fake, aside);
    retired = std::async(std::launch::async, [aside] {
      std::error_code ec;
      fs::remove(aside, ec);
    });
  }
  log.step("fake-quantize " + e.tensors + " to " + std::string(e.format.name), [&] {
    auto b = fq::gguf::builder::from(fa);
    (void)fq::fake_quantize_tensors(fa, b, patterns, qo);
    b.write(q.fake);
  });
  const auto fb = fq::gguf::file::open(q.fake.string());
  log.step("verify " + q.fake.filename().string(), [&] {
    q.problems = fq::verify_fake_quantized(fa, fb, patterns, qo);
    for (const auto& p : q.problems) log.note("  verify: " + p);
  });
  const auto report = log.step("numerical analysis", [&] {
    fq::stats::diff_options d;
    d.tensors = e.tensors;
    d.kernels = fq::stats::best_kernels();  // as `fakequant diff`: the CPU's best, same bits
    return fq::stats::diff_files(fa, fb, d);
  });
  fs::create_directories(results / "svg");
  write_text_file(results / "numerical_analysis.json", dump(fq::stats::to_json(report)));
  for (const auto& t : report.tensors)
    write_text_file(results / "svg" / (t.name + ".svg"), fq::stats::to_svg(t));
  for (const auto& t : report.tensors) {
    q.nums.mean_rel = std::max(q.nums.mean_rel, t.paired.mean_rel_diff);
    q.nums.max_rel = std::max(q.nums.max_rel, t.paired.max_rel_diff);
    q.nums.nan_inf |= t.paired.nan_b + t.paired.inf_b > 0;
  }
  q.nums.band = fq::plan::numerical_band(q.nums.mean_rel, q.nums.max_rel, q.nums.nan_inf);
  return q;
}

std::string early_stop_reason(const common_args& a, const quantized& q) {
  if (!q.problems.empty()) return std::string(text(a.lang, msg::verification_failed));
  if (q.nums.band == scenario::pessimistic && !a.no_early_stop)
    return std::string(text(a.lang, msg::numerical_too_large));
  return {};
}

// ---- conversation ----

namespace {

struct prompt_spec {
  const char* text;
  std::size_t n;
  float temp;
};
constexpr prompt_spec prompts[] = {{"Hello, can you introduce yourself?", 50, 0.7f},
                                   {"你好，請介紹一下自己。", 50, 0.7f},
                                   {"2+2等於多少？", 20, 0.1f}};
const std::vector<std::string> chat_turns = {"讓我們聊聊天吧。", "你最喜歡什麼季節？為什麼？",
                                             "請用一句話總結我們剛才聊了什麼。"};

}  // namespace

conversation_outputs run_conversation(generator& g, std::uint64_t seed) {
  conversation_outputs o;
  o.hello = g.complete("Hello", 5, 0.0f, seed);
  for (const auto& p : prompts) {
    o.sampled.push_back(g.complete(p.text, p.n, p.temp, seed));
    o.greedy.push_back(g.complete(p.text, p.n, 0.0f, seed));
  }
  o.chat = g.chat(chat_turns, 30);
  o.raw = g.raw();
  return o;
}

conversation_result compare_conversation(const conversation_outputs& a,
                                         const conversation_outputs& b, std::uint64_t seed) {
  conversation_result r;
  r.loads = a.hello.loaded && b.hello.loaded;
  r.inference = !b.hello.ids.empty();
  double sum = 0;
  std::size_t units = 0;
  for (std::size_t i = 0; i < std::size(prompts) && i < a.sampled.size() && i < b.sampled.size();
       ++i) {
    const auto& p = prompts[i];
    const auto ca =
        fq::plan::check_output(a.sampled[i].text, a.sampled[i].ids, a.sampled[i].finite);
    const auto cb =
        fq::plan::check_output(b.sampled[i].text, b.sampled[i].ids, b.sampled[i].finite);
    r.failures += fq::plan::failures_against(ca, cb);
    const double ag = fq::plan::agreement(a.greedy[i].ids, b.greedy[i].ids);
    sum += ag;
    ++units;
    r.text += fmt::format(
        "## {} (-n {} --temp {} --seed {})\n\noriginal:       {}\nfake-quantized: {}\n\n"
        "greedy original:       {}\ngreedy fake-quantized: {}\nagreement: {:.3f}\n\n",
        p.text, p.n, p.temp, seed, a.sampled[i].text, b.sampled[i].text, a.greedy[i].text,
        b.greedy[i].text, ag);
  }
  r.text += "## multi-turn chat (-n 30 per answer, greedy)\n\n";
  for (int mi = 0; mi < 2; ++mi) {
    const auto& o = mi == 0 ? a : b;
    for (std::size_t t = 0; t < o.chat.size() && t < chat_turns.size(); ++t)
      r.text += fmt::format("{} turn {}: {}\n{}\n", mi == 0 ? "original" : "fake-quantized", t + 1,
                            chat_turns[t], o.chat[t].text);
  }
  for (std::size_t t = 0; t < a.chat.size() && t < b.chat.size(); ++t) {
    const double ag = fq::plan::agreement(a.chat[t].ids, b.chat[t].ids);
    sum += ag;
    ++units;
    r.text += fmt::format("turn {} agreement: {:.3f}\n", t + 1, ag);
  }
  r.agreement = units ? sum / static_cast<double>(units) : 0;
  r.band = fq::plan::conversation_band(r.failures, r.agreement);
  if (!a.raw.empty() || !b.raw.empty())
    r.text += "\n# raw output of every run (original, then fake-quantized)\n\n" + a.raw + b.raw;
  return r;
}

namespace {

class builtin_gen final : public generator {
 public:
  builtin_gen(const fq::llama::model& m, const fq::llama::tokenizer& tok,
              const fq::llama::eval_options& eo)
      : m_(m), tok_(tok), eo_(eo) {}
  completion complete(const std::string& prompt, std::size_t n, float temp,
                      std::uint64_t seed) override {
    fq::llama::context ctx(m_, n_ctx(), eo_);
    return run(ctx, tok_.encode(prompt, true, true), n, temp, seed);
  }
  std::vector<completion> chat(const std::vector<std::string>& turns, std::size_t n) override {
    std::vector<completion> out;
    fq::llama::context ctx(m_, n_ctx(), eo_);
    std::int32_t pending = -1;  // the last answer token, not yet in the context
    for (std::size_t t = 0; t < turns.size(); ++t) {
      auto ids = tok_.encode(turns[t], t == 0, true);
      if (pending >= 0 && pending != tok_.eos()) ids.insert(ids.begin(), pending);
      out.push_back(run(ctx, ids, n, 0.0f, 0));
      pending = out.back().ids.empty() ? -1 : out.back().ids.back();
    }
    return out;
  }

 private:
  std::size_t n_ctx() const {
    return std::min<std::size_t>(m_.params().n_ctx_train ? m_.params().n_ctx_train : 512, 512);
  }
  completion run(fq::llama::context& ctx, const std::vector<std::int32_t>& prompt, std::size_t n,
                 float temp, std::uint64_t seed) {
    fq::llama::generate_options g;
    g.n_predict = n;
    g.sampling.temp = temp;
    g.sampling.seed = seed;
    g.eos = tok_.eos();
    const auto r = fq::llama::generate(ctx, prompt, g);
    completion c;
    for (const auto& t : r.tokens) {
      c.ids.push_back(t.id);
      c.text += tok_.token_to_piece(t.id);
      c.finite &= std::isfinite(t.logprob);
    }
    return c;
  }
  const fq::llama::model& m_;
  const fq::llama::tokenizer& tok_;
  fq::llama::eval_options eo_;
};

}  // namespace

std::unique_ptr<generator> builtin_generator(const fq::llama::model& m,
                                             const fq::llama::tokenizer& tok,
                                             const fq::llama::eval_options& eo) {
  return std::make_unique<builtin_gen>(m, tok, eo);
}

// ---- perplexity ----

std::vector<std::int32_t> perplexity_tokens(const fq::llama::tokenizer& tok, const fs::path& text,
                                            std::size_t n_ctx) {
  const auto tokens = tok.encode(read_file(text), true, false);
  if (tokens.size() < 2 * n_ctx)
    throw fq::error(
        fq::errc::invalid_argument, text.string(),
        fmt::format("the text has {} tokens; perplexity at context {} needs at least {}",
                    tokens.size(), n_ctx, 2 * n_ctx));
  return tokens;
}

std::vector<perplexity_figures> builtin_perplexity(
    const fq::llama::model& ma, const std::vector<const fq::llama::model*>& fakes,
    const std::vector<std::int32_t>& tokens, const fq::llama::perplexity_options& o,
    bool until_confident) {
  const std::size_t first = o.n_ctx / 2, k = fakes.size();
  std::vector<fq::llama::kld_accumulator> acc(k);
  std::vector<std::vector<float>> nll_a(k), nll_b(k);  // per-token nll, chunks done by each
  std::vector<perplexity_figures> r(k);
  std::vector<bool> active(k, true);
  std::vector<std::vector<float>> base;  // log-probabilities of the original, one chunk
  auto keep = [&](std::size_t, std::size_t j, std::span<const float> logits) {
    const std::size_t at = j - first;
    if (base.size() <= at) base.resize(at + 1);
    base[at].resize(logits.size());
    fq::llama::log_softmax(logits, base[at]);
  };
  const std::size_t whole = tokens.size() / o.n_ctx;
  const std::size_t n_chunks = std::min(o.max_chunks ? o.max_chunks : whole, whole);
  // The chunk is given twice (perplexity() wants two chunks of text) and only the first is
  // evaluated, so one chunk's log-probabilities of the original are all that is kept.
  for (std::size_t c = 0; c < n_chunks; ++c) {
    if (std::none_of(active.begin(), active.end(), [](bool x) { return x; })) break;
    auto oc = o;
    oc.max_chunks = 1;
    std::vector<std::int32_t> chunk(
        tokens.begin() + static_cast<std::ptrdiff_t>(c * o.n_ctx),
        tokens.begin() + static_cast<std::ptrdiff_t>((c + 1) * o.n_ctx));
    chunk.insert(chunk.end(), chunk.begin(), chunk.end());
    const auto ra = fq::llama::perplexity(ma, chunk, oc, {}, keep);
    for (std::size_t e = 0; e < k; ++e) {
      if (!active[e]) continue;
      const auto rb = fq::llama::perplexity(
          *fakes[e], chunk, oc, {}, [&](std::size_t, std::size_t j, std::span<const float> l) {
            fq::llama::base_record rec;
            rec.logp = base[j - first];
            acc[e].add(l, rec, static_cast<std::size_t>(chunk[j + 1]));
          });
      for (const auto& t : ra.tokens) nll_a[e].push_back(t.nll);
      for (const auto& t : rb.tokens) nll_b[e].push_back(t.nll);
      r[e].chunk_delta.push_back(rb.chunk_mean_nll[0] - ra.chunk_mean_nll[0]);
      if (until_confident && fq::plan::confident(r[e].chunk_delta)) active[e] = false;
    }
    if (::isatty(2)) fmt::print(stderr, "\rperplexity: chunk {}/{}", c + 1, n_chunks);
  }
  if (::isatty(2)) fmt::print(stderr, "\n");
  auto ppl_of = [](const std::vector<float>& nll, double& ppl, double& err) {
    double s = 0, s2 = 0;
    for (float v : nll) s += v, s2 += static_cast<double>(v) * v;
    const double n = static_cast<double>(nll.size()), mean = s / n;
    ppl = std::exp(mean);
    const double var = s2 / n - mean * mean;
    err = var > 0 && n > 1 ? std::sqrt(var / (n - 1)) * ppl : 0;
  };
  for (std::size_t e = 0; e < k; ++e) {
    auto& f = r[e];
    ppl_of(nll_a[e], f.ppl_a, f.err_a);
    ppl_of(nll_b[e], f.ppl_b, f.err_b);
    f.chunks = f.chunk_delta.size();
    f.n_ctx = o.n_ctx;
    f.ci95 = fq::plan::ratio_interval(f.chunk_delta, 0.95);
    f.ci99 = fq::plan::ratio_interval(f.chunk_delta, 0.99);
    f.ci_method = "Student-t on the per-chunk paired differences";
    const auto kr = acc[e].result();
    f.kld_mean = kr.kld_mean;
    f.kld_err = kr.kld_err;
    f.kld_99 = kr.kld_99;
    f.kld_max = kr.kld_max;
    f.same_top = kr.same_top;
  }
  return r;
}

std::string builtin_perplexity_commands(const common_args& a, const prepared& p,
                                        const fs::path& fake) {
  return fmt::format("fakequant perplexity -m {} -f {} -c {} -b {}{}\n(and the same with {})\n",
                     p.original.string(), p.text.string(), p.ppl.n_ctx, p.ppl.n_batch,
                     a.chunks ? " --chunks " + std::to_string(a.chunks) : "", fake.string());
}

std::string perplexity_report(const perplexity_figures& p, bool until_confident) {
  std::string s = fmt::format(
      "original:       PPL = {:.4f} +/- {:.5f}\nfake-quantized: PPL = {:.4f} +/- {:.5f}\n"
      "increase: {:+.6f} ({:+.4f} %), 95 % interval: {:+.4f} … {:+.4f} % over {} chunks ({})\n"
      "KL divergence: mean {:.6f} ± {:.6f}, 99 % {:.6f}, max {:.6f}; same top p {:.3f} %\n",
      p.ppl_a, p.err_a, p.ppl_b, p.err_b, p.ppl_b - p.ppl_a, 100 * p.increase(), 100 * p.ci95.lo,
      100 * p.ci95.hi, p.chunks, p.ci_method, p.kld_mean, p.kld_err, p.kld_99, p.kld_max,
      100 * p.same_top);
  if (until_confident)
    s += fmt::format("--until-confident: {} chunks, 99 % interval {:+.4f} … {:+.4f} %{}\n",
                     p.chunks, 100 * p.ci99.lo, 100 * p.ci99.hi,
                     fq::plan::confident(p.chunk_delta) ? " (one band)" : " (not yet one band)");
  s += "commands:\n" + p.commands;
  if (!p.raw.empty()) s += "\n# raw output of every run\n\n" + p.raw;
  return s;
}

// ---- decision and report ----

nlohmann::json write_summary(const summary_input& in, const fs::path& results, bool print) {
  const auto& a = *in.args;
  const auto& e = *in.exp;
  auto must = in.must;
  const auto conv = in.conv ? in.conv->band : scenario::pessimistic;
  const auto pplb = in.ppl ? fq::plan::perplexity_band(in.ppl->increase()) : scenario::pessimistic;
  const auto out = fq::plan::decide(must, in.nums.band, conv, pplb);
  nlohmann::json summary{{"command", a.command_line},       {"name", e.name},
                         {"format", e.format.name},         {"tensors", e.tensors},
                         {"rounding", name_of(e.rounding)}, {"store", name_of(e.store)},
                         {"environment", in.environment},   {"verification", in.problems}};
  summary["numerical"] = {{"mean_rel_diff", in.nums.mean_rel},
                          {"max_rel_diff", in.nums.max_rel},
                          {"nan_or_inf", in.nums.nan_inf},
                          {"band", fq::plan::to_string(in.nums.band)}};
  if (in.conv)
    summary["conversation"] = {{"agreement", in.conv->agreement},
                               {"failures", in.conv->failures},
                               {"band", fq::plan::to_string(conv)}};
  if (in.ppl) {
    const auto& p = *in.ppl;
    summary["perplexity"] = {{"original", {p.ppl_a, p.err_a}},
                             {"fake", {p.ppl_b, p.err_b}},
                             {"increase", p.increase()},
                             {"increase_ci95", {p.ci95.lo, p.ci95.hi}},
                             {"increase_ci99", {p.ci99.lo, p.ci99.hi}},
                             {"interval_method", p.ci_method},
                             {"until_confident", a.until_confident},
                             {"chunks", p.chunks},
                             {"n_ctx", p.n_ctx},
                             {"band", fq::plan::to_string(pplb)}};
    summary["kld"] = {
        {"mean", p.kld_mean}, {"p99", p.kld_99}, {"max", p.kld_max}, {"same_top_p", p.same_top}};
  }
  summary["must_pass"] = {{"loads", must.loads},
                          {"inference", must.inference},
                          {"stable", must.stable},
                          {"format_correct", must.format_correct}};
  summary["scenario"] = fq::plan::to_string(out.overall);
  summary["decision"] = fq::plan::to_string(out.decision);
  if (!in.stopped_early.empty()) summary["stopped_early"] = in.stopped_early;

  // The report in the language asked for.
  const auto l = a.lang;
  auto word = [l](auto v) { return text(l, word_of(v)); };
  auto pass = [l](bool ok) { return text(l, ok ? msg::word_pass : msg::word_fail); };
  std::string md = text(l, msg::report_title, e.tensors, e.format.name);
  md += text(l, msg::report_decision, word(out.decision), word(out.overall));
  if (!in.stopped_early.empty()) md += text(l, msg::report_stopped_early, in.stopped_early);
  md += text(l, msg::must_pass_header);
  md += text(l, msg::must_pass_rows, pass(must.loads), pass(must.inference), pass(must.stable),
             pass(must.format_correct));
  md += text(l, msg::criteria_header);
  md += text(l, msg::numerical_row, 100 * in.nums.mean_rel, 100 * in.nums.max_rel,
             word(in.nums.band));
  if (in.conv)
    md += text(l, msg::conversation_row, in.conv->agreement, in.conv->failures, word(conv));
  if (in.ppl) {
    const auto& p = *in.ppl;
    md += text(l, msg::perplexity_row, 100 * p.increase(), 100 * p.ci95.lo, 100 * p.ci95.hi,
               word(pplb));
    md += text(l, msg::kld_line, p.kld_mean, p.kld_99, p.kld_max, 100 * p.same_top);
    if (p.increase() < 0 && p.kld_mean > 1e-3) md += text(l, msg::perplexity_understates);
  }
  write_text_file(results / "test1_summary.md", md);
  write_text_file(results / "test1_summary.json", dump(summary));
  if (print) fmt::print("{}", md);
  return summary;
}

}  // namespace fqcli::pipeline

// SPDX-License-Identifier: MIT
// fakequant perplexity -m MODEL -f TEXT [-c 512] [-b N] [-t N] [--chunks N] [--activations
// ggml|f32]
//                      [--kl-divergence-base FILE [--kl-divergence] [--kld-format f32|llama]]
//                      [--json]
// llama-perplexity's method and output layout; KL divergence against a base file.
#include <fmt/core.h>
#include <unistd.h>

#include <cstdio>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/dispatch.hpp>
#include <fakequant/llama/kld.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fstream>
#include <iterator>

#include "checks.hpp"
#include "cli.hpp"
#include "interrupt.hpp"
#include "json_util.hpp"

namespace fqcli {
namespace {

struct perplexity_args {
  std::string model, text, kld_base, kld_format = "f32", activations = "ggml";
  std::size_t ctx = 512, batch = 2048, threads = 0, chunks = 0;
  bool kld = false, json = false;
};

std::string read_text(const std::string& path) { return read_text_input(path, "-f"); }

// Progress on stderr, only when it is a terminal (logs and pipes stay clean).
std::function<void(const fq::llama::chunk_report&)> progress() {
  if (!::isatty(2)) return {};
  auto start = std::make_shared<double>(0.0);
  return [start](const fq::llama::chunk_report& c) {
    *start += c.seconds;
    const double per = *start / static_cast<double>(c.index + 1);
    fmt::print(stderr, "\rchunk {}/{}, {:.1f} s/chunk, about {:.0f} s left   ", c.index + 1,
               c.n_chunks, per, per * static_cast<double>(c.n_chunks - c.index - 1));
    if (c.index + 1 == c.n_chunks) fmt::print(stderr, "\n");
  };
}

void print_running(const fq::llama::perplexity_result& r) {
  for (std::size_t i = 0; i < r.running_ppl.size(); ++i)
    fmt::print("[{}]{:.4f},", i + 1, r.running_ppl[i]);
  fmt::print("\n");
}

void print_final(const fq::llama::perplexity_result& r) {
  if (r.error_valid) {
    fmt::print("Final estimate: PPL = {:.4f} +/- {:.5f}\n", r.ppl, r.ppl_error);
  } else {
    fmt::print("Final estimate: PPL = {:.4f} (too few tokens for an error estimate)\n", r.ppl);
  }
}

// The statistics block of llama-perplexity --kl-divergence, in its layout.
void print_kld(const fq::llama::kld_result& k) {
  fmt::print("====== Perplexity statistics ======\n");
  fmt::print("Mean PPL(Q)                   : {:10.6f} ± {:10.6f}\n", k.ppl_q, k.ppl_q_err);
  fmt::print("Mean PPL(base)                : {:10.6f} ± {:10.6f}\n", k.ppl_base, k.ppl_base_err);
  fmt::print("Cor(ln(PPL(Q)), ln(PPL(base))): {:6.2f}%\n", 100 * k.cor);
  fmt::print("Mean ln(PPL(Q)/PPL(base))     : {:10.6f} ± {:10.6f}\n", k.ln_ratio, k.ln_ratio_err);
  fmt::print("Mean PPL(Q)/PPL(base)         : {:10.6f} ± {:10.6f}\n", k.ratio, k.ratio_err);
  fmt::print("Mean PPL(Q)-PPL(base)         : {:10.6f} ± {:10.6f}\n", k.diff, k.diff_err);
  fmt::print("\n====== KL divergence statistics ======\n");
  fmt::print("Mean    KLD: {:10.6f} ± {:10.6f}\n", k.kld_mean, k.kld_err);
  const std::pair<const char*, double> klds[] = {
      {"Maximum KLD", k.kld_max}, {"99.9%   KLD", k.kld_999}, {"99.0%   KLD", k.kld_99},
      {"95.0%   KLD", k.kld_95},  {"90.0%   KLD", k.kld_90},  {"Median  KLD", k.kld_median},
      {"10.0%   KLD", k.kld_10},  {" 5.0%   KLD", k.kld_5},   {" 1.0%   KLD", k.kld_1},
      {" 0.1%   KLD", k.kld_01},  {"Minimum KLD", k.kld_min}};
  for (const auto& [label, v] : klds) fmt::print("{}: {:10.6f}\n", label, v);
  fmt::print("\n====== Token probability statistics ======\n");
  fmt::print("Mean    Δp: {:6.3f} ± {:5.3f} %\n", 100 * k.dp_mean, 100 * k.dp_err);
  const std::pair<const char*, double> dps[] = {
      {"Maximum Δp", k.dp_max},    {"99.9%   Δp", k.dp_999}, {"99.0%   Δp", k.dp_99},
      {"95.0%   Δp", k.dp_95},     {"90.0%   Δp", k.dp_90},  {"75.0%   Δp", k.dp_75},
      {"Median  Δp", k.dp_median}, {"25.0%   Δp", k.dp_25},  {"10.0%   Δp", k.dp_10},
      {" 5.0%   Δp", k.dp_5},      {" 1.0%   Δp", k.dp_1},   {" 0.1%   Δp", k.dp_01},
      {"Minimum Δp", k.dp_min}};
  for (const auto& [label, v] : dps) fmt::print("{}: {:6.3f}%\n", label, 100 * v);
  fmt::print("RMS Δp    : {:6.3f} ± {:5.3f} %\n", 100 * k.rms_dp, 100 * k.rms_dp_err);
  fmt::print("Same top p: {:6.3f} ± {:5.3f} %\n", 100 * k.same_top, 100 * k.same_top_err);
}

nlohmann::json to_json(const fq::llama::perplexity_result& r) {
  return {{"n_ctx", r.n_ctx},
          {"chunks", r.n_chunks},
          {"scored_tokens", r.scored},
          {"ppl", r.ppl},
          {"ppl_error", r.error_valid ? nlohmann::json(r.ppl_error) : nlohmann::json()},
          {"running_ppl", r.running_ppl},
          {"seconds", r.seconds},
          {"tokens_per_second", r.tokens_per_second()}};
}

nlohmann::json to_json(const fq::llama::kld_result& k) {
  return {{"count", k.count},
          {"ppl_q", {k.ppl_q, k.ppl_q_err}},
          {"ppl_base", {k.ppl_base, k.ppl_base_err}},
          {"cor_ln_ppl", k.cor},
          {"ln_ppl_ratio", {k.ln_ratio, k.ln_ratio_err}},
          {"ppl_ratio", {k.ratio, k.ratio_err}},
          {"ppl_diff", {k.diff, k.diff_err}},
          {"kld_mean", {k.kld_mean, k.kld_err}},
          {"kld_percentiles",
           {{"max", k.kld_max},
            {"99.9", k.kld_999},
            {"99", k.kld_99},
            {"95", k.kld_95},
            {"90", k.kld_90},
            {"median", k.kld_median},
            {"10", k.kld_10},
            {"5", k.kld_5},
            {"1", k.kld_1},
            {"0.1", k.kld_01},
            {"min", k.kld_min}}},
          {"delta_p_mean", {k.dp_mean, k.dp_err}},
          {"delta_p_percentiles",
           {{"max", k.dp_max},
            {"99.9", k.dp_999},
            {"99", k.dp_99},
            {"95", k.dp_95},
            {"90", k.dp_90},
            {"75", k.dp_75},
            {"median", k.dp_median},
            {"25", k.dp_25},
            {"10", k.dp_10},
            {"5", k.dp_5},
            {"1", k.dp_1},
            {"0.1", k.dp_01},
            {"min", k.dp_min}}},
          {"rms_delta_p", {k.rms_dp, k.rms_dp_err}},
          {"same_top_p", {k.same_top, k.same_top_err}}};
}

void run(const perplexity_args& a) {
  if (!a.kld && !a.kld_base.empty()) {  // the base file is written: never over an input
    check_output(a.kld_base, {a.model, a.text});
    clean_stale_temps_of(a.kld_base);
  }
  const auto f = fq::gguf::file::open(a.model);
  const auto m = fq::llama::model::load(f);
  fq::llama::perplexity_options o;
  o.n_ctx = a.ctx;
  o.n_batch = a.batch;
  o.max_chunks = a.chunks;
  o.eval.threads = a.threads;
  o.eval.activations =
      a.activations == "f32" ? fq::llama::activations::f32 : fq::llama::activations::ggml;
  o.eval.kernels = fq::llama::best_kernels();
  const auto tok = fq::llama::tokenizer::from_file(f);
  o.bos = tok.bos();
  o.add_bos = tok.add_bos();

  if (a.kld) {
    const auto base = fq::llama::kld_base::open(a.kld_base);
    fmt::print(stderr, "kl_divergence: {} chunks of {} tokens from {}\n", base.n_chunk(),
               base.n_ctx(), a.kld_base);
    const auto [ppl, k] = fq::llama::kl_divergence(m, base, o, progress());
    if (a.json) {
      fmt::print("{}", dump({{"model", a.model},
                             {"base", a.kld_base},
                             {"perplexity", to_json(ppl)},
                             {"kl_divergence", to_json(k)}}));
      return;
    }
    print_running(ppl);
    print_final(ppl);
    fmt::print("\n");
    print_kld(k);
    return;
  }

  const auto text = read_text(a.text);
  const auto tokens = tok.encode(text, /*add_bos=*/true, /*parse_special=*/false);
  if (tokens.size() < 2 * a.ctx)
    throw fq::error(
        fq::errc::invalid_argument, a.text,
        fmt::format("the text has {} tokens; perplexity at context {} needs at least {} "
                    "(use a longer text or a smaller -c)",
                    tokens.size(), a.ctx, 2 * a.ctx));
  const std::size_t n_chunks =
      a.chunks ? std::min(a.chunks, tokens.size() / a.ctx) : tokens.size() / a.ctx;
  fmt::print(stderr,
             "perplexity: calculating perplexity over {} chunks, n_ctx={}, batch_size={}, "
             "kernels={}, threads={}\n",
             n_chunks, a.ctx, std::min(a.batch, a.ctx), o.eval.kernels->name,
             a.threads ? a.threads : std::thread::hardware_concurrency());
  fq::llama::perplexity_result r;
  if (!a.kld_base.empty()) {
    r = fq::llama::write_kld_base(
        m, tokens, o, a.kld_base,
        a.kld_format == "llama" ? fq::llama::kld_format::llama : fq::llama::kld_format::f32,
        progress());
    fmt::print(stderr, "wrote the KL-divergence base {}\n", a.kld_base);
  } else {
    r = fq::llama::perplexity(m, tokens, o, progress());
  }
  if (a.json) {
    fmt::print("{}", dump({{"model", a.model}, {"text", a.text}, {"perplexity", to_json(r)}}));
    return;
  }
  print_running(r);
  print_final(r);
}

}  // namespace

void register_perplexity(CLI::App& app) {
  auto* cmd = app.add_subcommand("perplexity",
                                 "Perplexity (and KL divergence) as llama-perplexity computes it");
  auto a = std::make_shared<perplexity_args>();
  cmd->add_option("-m,--model", a->model, "GGUF model")->required();
  cmd->add_option("-f,--file", a->text, "text file (not needed with --kl-divergence)");
  cmd->add_option("-c,--ctx-size", a->ctx, "context size (tokens per chunk)")
      ->check(CLI::Range(8, 1 << 20));
  cmd->add_option("-b,--batch-size", a->batch, "tokens per forward call")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("-t,--threads", a->threads, "threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--chunks", a->chunks, "evaluate at most this many chunks")
      ->check(CLI::Range(1, 1 << 30));
  cmd->add_option("--activations", a->activations,
                  "ggml: round activations as ggml does; f32: exact")
      ->check(CLI::IsMember({"ggml", "f32"}));
  cmd->add_option(
      "--kl-divergence-base", a->kld_base,
      "write the base model's log-probabilities here (or read them with --kl-divergence)");
  cmd->add_flag("--kl-divergence", a->kld,
                "compare with the base file given by --kl-divergence-base");
  cmd->add_option("--kld-format", a->kld_format,
                  "base file format to write: f32 (fakequant, exact) or llama (llama.cpp's 16-bit)")
      ->check(CLI::IsMember({"f32", "llama"}));
  cmd->add_flag("--json", a->json, "print JSON instead of text");
  cmd->callback([a] {
    if (a->kld && a->kld_base.empty())
      throw CLI::ValidationError("--kl-divergence", "needs --kl-divergence-base FILE");
    if (!a->kld && a->text.empty()) throw CLI::ValidationError("-f", "a text file is required");
    run(*a);
  });
}

}  // namespace fqcli

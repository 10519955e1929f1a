// SPDX-License-Identifier: MIT
// The llama.cpp backend (llama_cpp_backend.hpp).
#include "llama_cpp_backend.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fakequant/llama_cpp/logs.hpp>
#include <random>

#include "interrupt.hpp"
#include "json_util.hpp"

extern char** environ;

namespace fqcli::pipeline {

fs::path find_llama_tool(const fs::path& dir, const std::string& name) {
  if (dir.empty())
    throw fq::error(fq::errc::invalid_argument, name,
                    "--backend llama.cpp needs --llama-cpp-dir (the folder with llama.cpp's "
                    "llama-completion and llama-perplexity)");
  std::string tried;
  for (const auto& p : {dir / name, dir / "bin" / name, dir / "build" / "bin" / name}) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) return p;
    if (!tried.empty()) tried.append(", ");
    tried.append(p.string());
  }
  throw fq::error(fq::errc::not_found, (dir / name).string(),
                  fmt::format("llama.cpp's {} was not found as an executable (looked at {}); build "
                              "llama.cpp or point --llama-cpp-dir at its build",
                              name, tried));
}

namespace {

std::string quoted(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\n'\"\\$`*?") == std::string::npos) return s;
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q.append("'\\''");
    else
      q.push_back(c);
  }
  q.push_back('\'');
  return q;
}

fs::path scratch_file(const char* what) {
  static std::atomic<unsigned> counter{0};
  return fs::temp_directory_path() /
         fmt::format("fakequant-{}-{}-{}.{}", ::getpid(), counter++, std::random_device{}(), what);
}

// Writes the raw output to `file` so the error can point at it.
[[noreturn]] void fail(const fs::path& file, const std::string& raw, const std::string& message) {
  write_text_file(file, raw);
  throw fq::error(fq::errc::invalid_argument, file.string(), message);
}

}  // namespace

std::string tool_run::captured() const {
  return fmt::format("$ {}\n--- stdout ---\n{}\n--- stderr ---\n{}{}(exit status {})\n\n", command,
                     out, err, err.empty() || err.back() == '\n' ? "" : "\n", status);
}

tool_run run_tool(const fs::path& exe, const std::vector<std::string>& args) {
  tool_run r;
  r.command = quoted(exe.string());
  for (const auto& a : args) {
    r.command.push_back(' ');
    r.command.append(quoted(a));
  }
  const auto out = scratch_file("out"), err = scratch_file("err");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  // stdin from /dev/null: a tool that falls into interactive mode ends instead of waiting.
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> owned{exe.string()};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : owned) argv.push_back(s.data());
  argv.push_back(nullptr);
  const auto spawn = [&](const sigset_t& mask) {
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &mask);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      std::error_code ec;
      fs::remove(out, ec);
      fs::remove(err, ec);
      throw fq::error(fq::errc::io_error, exe.string(),
                      fmt::format("cannot run it: {}", std::strerror(rc)));
    }
    return pid;
  };
  // An interruption stops the tool too and removes its scratch files (interrupt.hpp).
  const child_scope child(spawn, out.string(), err.string());
  int status = 0;
  while (::waitpid(child.pid(), &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_file(out);
  r.err = read_file(err);
  std::error_code ec;
  fs::remove(out, ec);
  fs::remove(err, ec);
  return r;
}

// ---- generation ----

namespace {

class llama_cpp_gen final : public generator {
 public:
  llama_cpp_gen(fs::path tool, fs::path model, const fq::llama::tokenizer& tok, std::size_t threads,
                fs::path result_file)
      : tool_(std::move(tool)),
        model_(std::move(model)),
        tok_(tok),
        threads_(threads),
        file_(std::move(result_file)) {}

  completion complete(const std::string& prompt, std::size_t n, float temp,
                      std::uint64_t seed) override {
    std::vector<std::string> args{"-m", model_.string(),      "-p",      prompt,
                                  "-n", std::to_string(n),    "--temp",  fmt::format("{}", temp),
                                  "-s", std::to_string(seed), "-no-cnv", "--no-display-prompt"};
    if (threads_) args.insert(args.end(), {"-t", std::to_string(threads_)});
    const auto r = run_tool(tool_, args);
    raw_ += r.captured();
    const auto log = fq::llama_cpp::parse_completion_log(r.out, r.err);
    completion c;
    if (r.status != 0 || log.load_failed) {
      // The model did not load or the run failed: a must-pass failure, not a tool error.
      c.loaded = false;
      return c;
    }
    if (!log.generated)
      fail(file_, raw_,
           fmt::format("{} ran but printed no 'generate:' line: its output (kept in this file) "
                       "is not llama-completion's",
                       tool_.string()));
    c.text = log.text;
    c.ids = tok_.encode(c.text, false, false);
    return c;
  }

  std::vector<completion> chat(const std::vector<std::string>& turns, std::size_t n) override {
    // llama-completion -no-cnv has no interactive turns: each answer continues the whole
    // conversation so far (turns and this model's own answers), greedy.
    std::vector<completion> out;
    std::string history;
    for (const auto& t : turns) {
      history += t;
      out.push_back(complete(history, n, 0.0f, 0));
      history += out.back().text;
    }
    return out;
  }

  std::string raw() const override { return raw_; }

 private:
  fs::path tool_, model_;
  const fq::llama::tokenizer& tok_;
  std::size_t threads_;
  fs::path file_;
  std::string raw_;
};

}  // namespace

std::unique_ptr<generator> llama_cpp_generator(const fs::path& llama_dir, const fs::path& model,
                                               const fq::llama::tokenizer& tok, std::size_t threads,
                                               const fs::path& result_file) {
  return std::make_unique<llama_cpp_gen>(find_llama_tool(llama_dir, "llama-completion"), model, tok,
                                         threads, result_file);
}

// ---- perplexity and KL divergence ----

std::vector<double> chunk_deltas_from_running(const std::vector<double>& a,
                                              const std::vector<double>& b) {
  std::vector<double> d;
  const std::size_t n = std::min(a.size(), b.size());
  double prev_a = 0, prev_b = 0;
  for (std::size_t k = 1; k <= n; ++k) {
    if (!(a[k - 1] > 0) || !(b[k - 1] > 0)) return {};
    const double la = static_cast<double>(k) * std::log(a[k - 1]);
    const double lb = static_cast<double>(k) * std::log(b[k - 1]);
    d.push_back((lb - prev_b) - (la - prev_a));
    prev_a = la;
    prev_b = lb;
  }
  return d;
}

llama_cpp_baseline llama_cpp_base(const common_args& a, const prepared& p,
                                  const fs::path& result_file) {
  llama_cpp_baseline b;
  b.tool = find_llama_tool(a.llama_cpp_dir, "llama-perplexity");
  b.n_ctx = p.ppl.n_ctx;
  b.base_file = p.data / fmt::format("original_model.c{}{}.kld", p.ppl.n_ctx,
                                     a.chunks ? fmt::format(".chunks{}", a.chunks) : "");
  std::vector<std::string> args{"-m", p.original.string(),         "-f", p.text.string(),
                                "-c", std::to_string(p.ppl.n_ctx), "-b", std::to_string(a.batch)};
  if (a.threads) args.insert(args.end(), {"-t", std::to_string(a.threads)});
  if (a.chunks) args.insert(args.end(), {"--chunks", std::to_string(a.chunks)});
  args.insert(args.end(), {"--kl-divergence-base", b.base_file.string()});
  const auto r = run_tool(b.tool, args);
  b.command = r.command;
  b.raw = r.captured();
  if (r.status != 0)
    fail(result_file, b.raw,
         fmt::format("{} failed (exit status {}) on the original model; its output is in this file",
                     b.tool.string(), r.status));
  const auto log = fq::llama_cpp::parse_perplexity_log(r.out + "\n" + r.err);
  if (!log.found_final)
    fail(result_file, b.raw,
         fmt::format("{} printed no 'Final estimate: PPL = x +/- y' line{}; its output is in this "
                     "file",
                     b.tool.string(),
                     log.negative_variance ? " (it reported a negative standard deviation)" : ""));
  b.ppl = log.ppl;
  b.err = log.ppl_error;
  b.running = log.running;
  return b;
}

perplexity_figures llama_cpp_kld(const common_args& a, const llama_cpp_baseline& base,
                                 const fs::path& fake, const fs::path& result_file) {
  perplexity_figures f;
  std::vector<std::string> args{"-m", fake.string(),          "-c", std::to_string(base.n_ctx),
                                "-b", std::to_string(a.batch)};
  if (a.threads) args.insert(args.end(), {"-t", std::to_string(a.threads)});
  args.insert(args.end(), {"--kl-divergence-base", base.base_file.string(), "--kl-divergence"});
  const auto r = run_tool(base.tool, args);
  f.commands = base.command + "\n" + r.command + "\n";
  f.raw = base.raw + r.captured();
  if (r.status != 0)
    fail(result_file, f.raw,
         fmt::format("{} --kl-divergence failed (exit status {}) on {}; its output is in this file",
                     base.tool.string(), r.status, fake.string()));
  const auto log = fq::llama_cpp::parse_kld_log(r.out + "\n" + r.err);
  if (!log.found || !log.ppl_q || !log.same_top || !log.ln_ratio)
    fail(result_file, f.raw,
         fmt::format("{} --kl-divergence printed no complete KL divergence statistics (Mean "
                     "PPL(Q), Mean ln(PPL(Q)/PPL(base)), Mean KLD, Same top p); its output is in "
                     "this file",
                     base.tool.string()));
  // PPL(base) in that block comes from the base file's 16-bit log-probabilities, clipped 16 nats
  // below the top logit (biased for weak models, ../shared/reference/README.md); the original's
  // own run printed its exact perplexity, which is what the increase is measured against.
  f.ppl_a = base.ppl;
  f.err_a = base.err;
  f.ppl_b = log.ppl_q->value;
  f.err_b = log.ppl_q->error;
  f.kld_mean = log.kld_mean->value;
  f.kld_err = log.kld_mean->error;
  f.kld_99 = log.kld_at(99).value_or(NAN);
  f.kld_max = log.kld_at(100).value_or(NAN);
  f.same_top = log.same_top->value / 100;
  f.n_ctx = base.n_ctx;
  f.chunks = log.n_chunks ? log.n_chunks : base.running.size();
  std::vector<double> running_b;
  for (const auto& c : log.chunks) running_b.push_back(c.ppl.value);
  if (!log.chunks.empty() && running_b.size() == base.running.size())
    f.chunk_delta = chunk_deltas_from_running(base.running, running_b);
  if (f.chunk_delta.size() >= 2) {
    f.ci95 = fq::plan::ratio_interval(f.chunk_delta, 0.95);
    f.ci99 = fq::plan::ratio_interval(f.chunk_delta, 0.99);
    f.ci_method = "Student-t on per-chunk differences from llama.cpp's running perplexities";
  } else {
    // No per-chunk rows: llama.cpp's per-token paired uncertainty of the ln ratio, around the
    // exact ratio (normal quantiles; tokens within a chunk are not independent, so it is narrow).
    const double ln = std::log(f.ppl_b / f.ppl_a), u = log.ln_ratio->error;
    f.ci95 = {std::expm1(ln - 1.95996 * u), std::expm1(ln + 1.95996 * u)};
    f.ci99 = {std::expm1(ln - 2.5758 * u), std::expm1(ln + 2.5758 * u)};
    f.ci_method = "llama.cpp's per-token paired uncertainty of ln(PPL(Q)/PPL(base))";
  }
  return f;
}

}  // namespace fqcli::pipeline

// SPDX-License-Identifier: MIT
// fakequant sweep: tests 2–4 of the plan — several experiments (tensor patterns × formats), each
// through the test-1 phases of pipeline.hpp, against one evaluation of the original (its
// generations, its perplexity run and its KL-divergence base are computed once); a comparison table
// (markdown and JSON) and an SVG chart of the perplexity increase and the KL divergence.
#include <fmt/core.h>

#include <array>
#include <cmath>
#include <deque>
#include <fakequant/stats/svg.hpp>
#include <regex>
#include <set>

#include "cli.hpp"
#include "interrupt.hpp"
#include "json_util.hpp"
#include "llama_cpp_backend.hpp"
#include "messages.hpp"
#include "pipeline.hpp"

namespace fqcli {
namespace {

namespace fs = std::filesystem;
using namespace pipeline;

struct sweep_args : common_args {
  std::string experiments_file, name = "sweep";
  std::vector<std::string> tensors, formats;
  sweep_args() { workdir = "fakequant-sweep"; }
};

std::string str_field(const nlohmann::json& o, const char* key, const std::string& where,
                      std::size_t i) {
  if (!o[key].is_string())
    throw fq::error(fq::errc::invalid_argument, where,
                    fmt::format("experiment {}: \"{}\" must be a string", i + 1, key));
  return o[key].get<std::string>();
}

// "tensors": one pattern, or a non-empty list of them (joined with commas, as --tensors takes
// them).
std::string tensors_field(const nlohmann::json& t, const std::string& where, std::size_t i) {
  std::string tensors;
  if (t.is_string()) return t.get<std::string>();
  if (!t.is_array() || t.empty())
    throw fq::error(
        fq::errc::invalid_argument, where,
        fmt::format("experiment {}: \"tensors\" must be a non-empty list of patterns", i + 1));
  for (const auto& p : t) {
    if (!p.is_string())
      throw fq::error(fq::errc::invalid_argument, where,
                      fmt::format("experiment {}: \"tensors\" must list strings", i + 1));
    if (!tensors.empty()) tensors.push_back(',');
    tensors.append(p.get<std::string>());
  }
  return tensors;
}

// FILE: a JSON list of {"name", "tensors": [patterns], "format", optional "rounding", "overflow",
// "scale", "store"}.
std::vector<experiment> load_experiments(const fs::path& file) {
  const auto text = read_file(file);
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    throw fq::error(fq::errc::invalid_argument, file.string(), "not valid JSON");
  if (!j.is_array() || j.empty())
    throw fq::error(fq::errc::invalid_argument, file.string(),
                    "expected a non-empty JSON list of experiments");
  std::vector<experiment> out;
  const std::set<std::string> known{"name",     "tensors", "format", "rounding",
                                    "overflow", "scale",   "store"};
  for (std::size_t i = 0; i < j.size(); ++i) {
    const auto& o = j[i];
    if (!o.is_object())
      throw fq::error(fq::errc::invalid_argument, file.string(),
                      fmt::format("experiment {} is not a JSON object", i + 1));
    for (const auto& [k, v] : o.items())
      if (!known.count(k))
        throw fq::error(fq::errc::invalid_argument, file.string(),
                        fmt::format("experiment {}: unknown key \"{}\" (known: name, tensors, "
                                    "format, rounding, overflow, scale, store)",
                                    i + 1, k));
    for (const char* k : {"name", "tensors", "format"})
      if (!o.contains(k))
        throw fq::error(fq::errc::invalid_argument, file.string(),
                        fmt::format("experiment {}: \"{}\" is missing", i + 1, k));
    experiment e;
    e.name = str_field(o, "name", file.string(), i);
    const auto format = str_field(o, "format", file.string(), i);
    e.tensors = tensors_field(o["tensors"], file.string(), i);
    std::string rounding = "nearest-even", overflow, scale = "none", store = "same";
    if (o.contains("rounding")) rounding = str_field(o, "rounding", file.string(), i);
    if (o.contains("overflow")) overflow = str_field(o, "overflow", file.string(), i);
    if (o.contains("scale")) scale = str_field(o, "scale", file.string(), i);
    if (o.contains("store")) store = str_field(o, "store", file.string(), i);
    e.format = parse_format(format);
    const auto parse = [&](auto parser, const std::string& value, const char* label) {
      try {
        return parser(value);
      } catch (const fq::error& x) {
        throw fq::error(fq::errc::invalid_argument, file.string(),
                        fmt::format("experiment '{}': {}{}", e.name, label, x.message()));
      }
    };
    e.rounding = parse(parse_rounding, rounding, "");
    e.overflow = parse(parse_overflow, overflow, "");
    e.scale = parse(parse_scale, scale, "scale: ");
    e.store = parse(parse_store, store, "");
    out.push_back(e);
  }
  return out;
}

struct row {
  experiment e;
  nlohmann::json summary;
  const perplexity_figures* ppl = nullptr;
};

// Two panels of horizontal bars: the perplexity increase with its 95 % interval, and the mean KL
// divergence, one bar per experiment.
std::string chart(const std::vector<row>& rows) {
  const double label_w = 200, panel_w = 300, gap = 40, row_h = 24, top = 50;
  const double width = label_w + 2 * panel_w + gap + 20;
  const double height = top + row_h * static_cast<double>(rows.size()) + 30;
  double inc_max = 1e-6, kld_max = 1e-12;
  for (const auto& r : rows)
    if (r.ppl) {
      for (double v : {r.ppl->increase(), r.ppl->ci95.lo, r.ppl->ci95.hi})
        if (std::isfinite(v) && std::fabs(v) < 1e6) inc_max = std::max(inc_max, std::fabs(v));
      if (std::isfinite(r.ppl->kld_mean)) kld_max = std::max(kld_max, r.ppl->kld_mean);
    }
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} "
      "{1}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
      "fill=\"white\"/>\n",
      width, height);
  const double p1 = label_w, p2 = label_w + panel_w + gap, mid = p1 + panel_w / 2;
  s += fmt::format(
      "<text x=\"{}\" y=\"20\" text-anchor=\"middle\">perplexity increase (%, 95 % interval), "
      "±{:.3g} %</text>\n",
      mid, 100 * inc_max);
  s += fmt::format(
      "<text x=\"{}\" y=\"20\" text-anchor=\"middle\">mean KL divergence (0 … {:.3g})</text>\n",
      p2 + panel_w / 2, kld_max);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", mid,
                   top - 10, height - 20);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", p2,
                   top - 10, height - 20);
  const double half = panel_w / 2 - 10;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const double y = top + row_h * static_cast<double>(i);
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", label_w - 8, y + 14,
                     fq::stats::xml_escape(r.e.name));
    if (!r.ppl) {
      s += fmt::format("<text x=\"{}\" y=\"{}\">not evaluated ({})</text>\n", p1 + 4, y + 14,
                       fq::stats::xml_escape(r.summary.value("decision", std::string("STOP"))));
      continue;
    }
    auto xi = [&](double v) { return mid + std::clamp(v / inc_max, -1.0, 1.0) * half; };
    const double x = xi(r.ppl->increase());
    const auto colour = r.ppl->increase() < 0.01   ? "#4a9"
                        : r.ppl->increase() < 0.05 ? "#e93"
                                                   : "#d44";
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"{}\"><title>{:+.4f} %</title>"
        "</rect>\n",
        std::min(x, mid), y + 3, std::fabs(x - mid), colour, 100 * r.ppl->increase());
    if (std::isfinite(r.ppl->ci95.lo) && std::fabs(r.ppl->ci95.lo) < 1e6)
      s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n",
                       xi(r.ppl->ci95.lo), y + 10, xi(r.ppl->ci95.hi), y + 10);
    const double kw = std::isfinite(r.ppl->kld_mean)
                          ? std::max(0.0, r.ppl->kld_mean) / kld_max * (panel_w - 10)
                          : 0;
    s += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"14\" fill=\"#57b\"><title>{:.6g}</title>"
        "</rect>\n",
        p2, y + 3, kw, r.ppl->kld_mean);
  }
  return s + "</svg>\n";
}

// The experiments of the file, then one per --tensors × --formats pair; with --demo and no other
// experiment, three.
std::vector<experiment> collect_experiments(const sweep_args& a) {
  std::vector<experiment> exps;
  if (!a.experiments_file.empty()) exps = load_experiments(a.experiments_file);
  if (!a.tensors.empty() || !a.formats.empty()) {
    const std::vector<std::string> ts =
        a.tensors.empty() ? std::vector<std::string>{"blk.0.ffn_norm.weight"} : a.tensors;
    const std::vector<std::string> fs_ =
        a.formats.empty() ? std::vector<std::string>{"bf16"} : a.formats;
    for (const auto& t : ts)
      for (const auto& f : fs_) {
        experiment e;
        e.tensors = t;
        e.format = parse_format(f);
        // A file-name-safe name from the patterns: blk.*.ffn_norm.weight → blk._.ffn_norm.weight.
        e.name = fmt::format("{}-{}", std::regex_replace(t, std::regex("[^A-Za-z0-9._-]"), "_"), f);
        exps.push_back(e);
      }
  }
  if (exps.empty() && a.demo)
    // Test 1 itself, the next step the plan names, and one the numerical analysis stops.
    for (const auto& [n, t, f] :
         {std::array<const char*, 3>{"layer0-bf16", "blk.0.ffn_norm.weight", "bf16"},
          std::array<const char*, 3>{"ffn_norm-bf16", "blk.*.ffn_norm.weight", "bf16"},
          std::array<const char*, 3>{"norms-fp8_e4m3", "*norm.weight", "fp8_e4m3"}}) {
      experiment e;
      e.name = n;
      e.tensors = t;
      e.format = parse_format(f);
      exps.push_back(e);
    }
  if (exps.empty())
    throw CLI::ValidationError("--experiments",
                               "no experiment: give --experiments FILE, --tensors/--formats, or "
                               "--demo");
  return exps;
}

// Experiment names name files and folders: safe characters, each once, none the sweep's own.
void check_names(const std::vector<experiment>& exps, const sweep_args& a) {
  const std::string where = a.experiments_file.empty() ? "command line" : a.experiments_file;
  std::set<std::string> names;
  const std::regex safe("[A-Za-z0-9._-]+");
  for (const auto& e : exps) {
    if (!std::regex_match(e.name, safe) || e.name == "." || e.name == "..")
      throw fq::error(fq::errc::invalid_argument, where,
                      fmt::format("experiment name '{}' must be letters, digits, '.', '_' or '-' "
                                  "(it names files)",
                                  e.name));
    if (!names.insert(e.name).second || e.name == a.name)
      throw fq::error(fq::errc::invalid_argument, where,
                      fmt::format("experiment name '{}' is used twice (or is the sweep's own "
                                  "--name)",
                                  e.name));
  }
}

// One experiment on its way through the phases.
struct state {
  experiment e;
  fs::path results;
  std::unique_ptr<run_log> log;
  quantized q;
  summary_input in;
  conversation_result conv;
  perplexity_figures ppl;
  bool evaluate = false;
};

// Phase 2 and the numerical analysis of every experiment; those it stops are not evaluated.
std::deque<state> quantize_all(const sweep_args& a, const std::vector<experiment>& exps,
                               const fq::gguf::file& fa, const prepared& p, run_log& log) {
  std::deque<state> st;  // a deque: summary_input points into its elements
  for (const auto& e : exps) {
    auto& s = st.emplace_back();
    s.e = e;
    s.results = fs::path(a.workdir) / "results" / e.name;
    s.log = std::make_unique<run_log>(start_log(
        s.results, fmt::format("# fakequant sweep, experiment {} — {}", e.name, a.command_line)));
    s.q = log.step("experiment " + e.name + ": fake-quantize, verify, numerical analysis",
                   [&] { return quantize_and_analyse(fa, s.e, p.data, s.results, *s.log); });
    s.in = quantized_summary(a, s.e, s.q, p.environment);
    s.evaluate = s.in.stopped_early.empty();
    if (!s.evaluate) s.log->note(fmt::format("decision: STOP ({})", s.in.stopped_early));
  }
  return st;
}

// The models the built-in evaluator holds while the sweep runs: the original and each evaluated
// experiment's (deques: the generators and the perplexity run point into them).
struct evaluators {
  std::deque<fq::gguf::file> files;
  std::deque<fq::llama::model> models;
  std::optional<fq::llama::model> original;
  std::vector<const fq::llama::model*> fakes;
};

// The conversation tests: the original's generations once, then each experiment's against them.
// Returns the experiments that load, to be evaluated further.
std::vector<state*> converse_all(const sweep_args& a, std::deque<state>& st,
                                 const fq::gguf::file& fa, const fq::llama::tokenizer& tok,
                                 const prepared& p, const fs::path& out, evaluators& ev,
                                 run_log& log) {
  std::unique_ptr<generator> ga;
  if (a.llama_cpp()) {
    ga = llama_cpp_generator(a.llama_cpp_dir, p.original, tok, a.threads,
                             out / "conversation_original.txt");
  } else {
    ev.original = fq::llama::model::load(fa);
    ga = builtin_generator(*ev.original, tok, p.ppl.eval);
  }
  const auto oa = log.step("the original: loading, \"Hello\" -n 5, conversation",
                           [&] { return run_conversation(*ga, a.seed); });
  std::vector<state*> evaluated;
  for (auto& s : st) {
    if (!s.evaluate) continue;
    std::unique_ptr<generator> gb;
    if (a.llama_cpp()) {
      gb = llama_cpp_generator(a.llama_cpp_dir, s.q.fake, tok, a.threads,
                               s.results / "conversation_tests.txt");
    } else {
      ev.files.push_back(fq::gguf::file::open(s.q.fake.string()));
      ev.models.push_back(fq::llama::model::load(ev.files.back()));
      gb = builtin_generator(ev.models.back(), tok, p.ppl.eval);
    }
    const auto ob = s.log->step("quick inference and conversation tests",
                                [&] { return run_conversation(*gb, a.seed); });
    s.conv = compare_conversation(oa, ob, a.seed);
    write_text_file(s.results / "conversation_tests.txt", s.conv.text);
    add_conversation(s.in, s.conv);
    if (!s.conv.loads) {
      s.in.stopped_early = std::string(text(a.lang, msg::fake_does_not_load));
      s.evaluate = false;
      continue;
    }
    evaluated.push_back(&s);
    if (!a.llama_cpp()) ev.fakes.push_back(&ev.models.back());
  }
  return evaluated;
}

// Perplexity and KL divergence: the original evaluated once for all experiments.
void perplexity_all(const sweep_args& a, const std::vector<state*>& evaluated,
                    const fq::llama::tokenizer& tok, const prepared& p, const fs::path& out,
                    const evaluators& ev, run_log& log) {
  if (evaluated.empty()) return;
  if (a.llama_cpp()) {
    const auto base = log.step("llama-perplexity: the original (and its KL-divergence base)", [&] {
      return llama_cpp_base(a, p, out / "perplexity_original.txt");
    });
    for (auto* s : evaluated)
      s->ppl = s->log->step("llama-perplexity --kl-divergence", [&] {
        return llama_cpp_kld(a, base, s->q.fake, s->results / "perplexity_comparison.txt");
      });
  } else {
    const auto tokens = perplexity_tokens(tok, p.text, p.ppl.n_ctx);
    auto figs = log.step("perplexity and KL divergence: the original once, every experiment", [&] {
      return builtin_perplexity(*ev.original, ev.fakes, tokens, p.ppl, a.until_confident);
    });
    for (std::size_t i = 0; i < evaluated.size(); ++i) {
      evaluated[i]->ppl = figs[i];
      evaluated[i]->ppl.commands = builtin_perplexity_commands(a, p, evaluated[i]->q.fake);
    }
  }
  for (auto* s : evaluated) {
    write_text_file(s->results / "perplexity_comparison.txt",
                    perplexity_report(s->ppl, a.until_confident));
    s->in.ppl = &s->ppl;
  }
}

// One line of sweep.md's table.
std::string table_line(const row& r) {
  const auto& s = r.summary;
  std::string conv = "—", ppl_a = "—", ppl_b = "—", inc = "—", kld = "—", top = "—", chunks = "—";
  if (s.contains("conversation"))
    conv = fmt::format("{:.3f}", s["conversation"]["agreement"].get<double>());
  if (r.ppl) {
    ppl_a = fmt::format("{:.4f}", r.ppl->ppl_a);
    ppl_b = fmt::format("{:.4f}", r.ppl->ppl_b);
    inc = fmt::format("{:+.4f} % ({:+.4f} … {:+.4f})", 100 * r.ppl->increase(),
                      100 * r.ppl->ci95.lo, 100 * r.ppl->ci95.hi);
    kld = fmt::format("{:.6f}", r.ppl->kld_mean);
    top = fmt::format("{:.3f} %", 100 * r.ppl->same_top);
    chunks = std::to_string(r.ppl->chunks);
  }
  return fmt::format(
      "| {} | `{}` | {} | {:.4f} % | {:.4f} % | {} | {} | {} | {} | {} | {} | {} | "
      "**{}**{} |\n",
      r.e.name, r.e.tensors, r.e.format.name, 100 * s["numerical"]["mean_rel_diff"].get<double>(),
      100 * s["numerical"]["max_rel_diff"].get<double>(), conv, ppl_a, ppl_b, inc, kld, top, chunks,
      s["decision"].get<std::string>(),
      s.contains("stopped_early") ? fmt::format(" ({})", s["stopped_early"].get<std::string>())
                                  : std::string());
}

std::string comparison_markdown(const std::vector<row>& rows, const prepared& p) {
  std::string md = fmt::format(
      "# Sweep — {} experiments on {}\n\nThe original was evaluated once; each experiment's "
      "files are in results/NAME/.\n\n"
      "| experiment | tensors | format | mean rel. | max rel. | agreement | PPL original | PPL "
      "fake | increase (95 % CI) | mean KLD | same top | chunks | decision |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
      rows.size(), p.original.string());
  for (const auto& r : rows) md += table_line(r);
  bool disagree = false;
  for (const auto& r : rows) disagree |= r.ppl && r.ppl->increase() < 0 && r.ppl->kld_mean > 1e-3;
  if (disagree)
    md +=
        "\nNote: where perplexity went down while the KL divergence is large, the output "
        "distribution changed: perplexity alone understates it.\n";
  md += "\n![perplexity increase and KL divergence per experiment](sweep.svg)\n";
  return md;
}

// Reports: each experiment's, then the comparison (sweep.md, sweep.json, sweep.svg).
void write_reports(const sweep_args& a, std::deque<state>& st, const prepared& p,
                   const fs::path& out, run_log& log) {
  std::vector<row> rows;
  for (auto& s : st) {
    const auto summary = write_summary(s.in, s.results, false);
    s.log->note("decision: " + summary["decision"].get<std::string>());
    rows.push_back({s.e, summary, s.in.ppl});
  }
  const auto md = comparison_markdown(rows, p);
  auto table = nlohmann::json::array();
  for (const auto& r : rows) table.push_back(r.summary);
  write_text_file(out / "sweep.md", md);
  write_text_file(out / "sweep.json", dump(nlohmann::json{{"command", a.command_line},
                                                          {"original", p.original.string()},
                                                          {"environment", p.environment},
                                                          {"experiments", table}}));
  write_text_file(out / "sweep.svg", chart(rows));
  log.note("wrote sweep.md, sweep.json, sweep.svg");
  fmt::print("{}", md);
}

void run(const sweep_args& a) {
  check_evaluation_options(a);
  const auto exps = collect_experiments(a);
  check_names(exps, a);

  // One run per work folder (test1 and sweep share the lock), inputs checked before any copy.
  const auto lock = lock_workdir(a.workdir);
  for (const auto& e : exps) check_inputs(a, e.tensors);
  const fs::path out = fs::path(a.workdir) / "results" / a.name;
  auto log = start_log(out, "# fakequant sweep — " + a.command_line);
  auto p = prepare(a, log);
  record_sha256(p, log);
  const auto fa = fq::gguf::file::open(p.original.string());
  const auto tok = fq::llama::tokenizer::from_file(fa);

  auto st = quantize_all(a, exps, fa, p, log);
  evaluators ev;
  const auto evaluated = converse_all(a, st, fa, tok, p, out, ev, log);
  perplexity_all(a, evaluated, tok, p, out, ev, log);
  write_reports(a, st, p, out, log);
}

}  // namespace

void register_sweep(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sweep", "Tests 2–4: several experiments × formats against one evaluation of the original");
  auto a = std::make_shared<sweep_args>();
  cmd->add_option("--model", a->model, "the original GGUF model (never written)");
  cmd->add_option("--text", a->text, "perplexity text");
  cmd->add_option("--experiments", a->experiments_file,
                  "JSON list of {\"name\", \"tensors\": [patterns], \"format\", optional "
                  "\"rounding\", \"overflow\", \"scale\", \"store\"}");
  cmd->add_option("--tensors", a->tensors,
                  "tensor patterns (repeat: one experiment per pattern "
                  "list × format)");
  cmd->add_option("--formats", a->formats, "formats (repeat)");
  cmd->add_option("--workdir", a->workdir, "experiment folder (data/ and results/NAME/)");
  cmd->add_option("--name", a->name, "folder of the comparison (results/NAME)");
  add_evaluation_options(*cmd, *a);
  cmd->add_flag("--until-confident", a->until_confident,
                "per experiment: stop its perplexity run, after at least 4 chunks, once the 99 % "
                "interval of the increase lies in one band");
  cmd->add_flag("--no-early-stop", a->no_early_stop,
                "evaluate experiments even when the numerical analysis says stop");
  cmd->add_flag("--demo", a->demo,
                "a synthesized model, a built-in text and three experiments: seconds");
  cmd->callback([a, cmd] {
    a->command_line = "fakequant sweep";
    for (const auto* o : cmd->get_options())
      if (o->count() && o->get_name() != "--help")
        for (const auto& r : o->results())
          a->command_line += fmt::format(" {}{}{}", o->get_name(), o->get_expected_min() ? " " : "",
                                         o->get_expected_min() ? r : std::string());
    run(*a);
  });
}

}  // namespace fqcli

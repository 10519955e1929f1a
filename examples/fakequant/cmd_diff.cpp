// SPDX-License-Identifier: MIT
// fakequant diff A.gguf B.gguf [--tensors PATTERN] [--epsilon E] [--json] [--output FILE]
//                              [--svg DIR] [--all] [--threads N]
#include <fmt/core.h>

#include <fakequant/gguf.hpp>
#include <fakequant/quantize.hpp>
#include <fakequant/stats/diff.hpp>
#include <fakequant/stats/dispatch.hpp>
#include <fakequant/stats/json.hpp>
#include <fakequant/stats/svg.hpp>
#include <filesystem>

#include "checks.hpp"
#include "cli.hpp"
#include "json_util.hpp"

namespace fqcli {
namespace {

std::string g(double x) {
  return std::isfinite(x) ? fmt::format("{:.4g}", x) : fmt::format("{}", x);
}

void print_table(const fq::stats::diff_report& r) {
  fmt::print("A: {}\nB: {}\n", r.a, r.b);
  fmt::print("metadata: {}\n", r.metadata_identical ? "identical" : "DIFFERENT");
  for (const auto& d : r.metadata_differences) fmt::print("  {}\n", d);
  fmt::print("structure: {}\n", r.structure_identical ? "identical" : "DIFFERENT");
  for (const auto& d : r.structure_differences) fmt::print("  {}\n", d);
  fmt::print("epsilon: {}\n", r.epsilon);
  if (r.tensors.empty()) {
    fmt::print("tensors: no differences\n");
    return;
  }
  fmt::print("{:<32} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}\n", "tensor",
             "type", "changed", "max|a-b|", "mean|a-b|", "max rel", "mean rel", "rmse", "sqnr dB",
             "cosine");
  for (const auto& t : r.tensors) {
    const auto& p = t.paired;
    fmt::print("{:<32} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9} {:>10}\n", t.name,
               t.type_b, p.changed, g(p.max_abs_diff), g(p.mean_abs_diff), g(p.max_rel_diff),
               g(p.mean_rel_diff), g(p.rmse), g(p.sqnr_db),
               std::isfinite(p.cosine) ? fmt::format("{:.8f}", p.cosine) : g(p.cosine));
    if (p.nan_a + p.nan_b + p.inf_a + p.inf_b)
      fmt::print("  NaN {} / {}, Inf {} / {} (A / B)\n", p.nan_a, p.nan_b, p.inf_a, p.inf_b);
  }
}

std::string file_name_for(const std::string& tensor) {
  std::string s;
  for (char c : tensor)
    s +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return s + ".svg";
}

}  // namespace

void register_diff(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "diff", "Compare two GGUF files: metadata, structure and the numbers of every tensor");
  struct args {
    std::string a, b, tensors, output, svg;
    double epsilon = 1e-8;
    bool json = false, all = false;
    unsigned threads = 0;
  };
  auto o = std::make_shared<args>();
  cmd->add_option("A", o->a, "original GGUF file")->required();
  cmd->add_option("B", o->b, "GGUF file to compare with it (e.g. fake-quantized)")->required();
  cmd->add_option("--tensors", o->tensors,
                  "only tensors whose names match these comma-separated globs (* and ?)");
  cmd->add_option("--epsilon", o->epsilon, "ε of the relative difference |a-b| / (|a| + ε)")
      ->check(finite_in(0));
  cmd->add_flag("--json", o->json, "print JSON (numerical_analysis.json) instead of the table");
  cmd->add_option("--output", o->output, "also write the JSON to this file");
  cmd->add_option("--svg", o->svg, "write one SVG picture per compared tensor into this folder");
  cmd->add_flag("--all", o->all, "compare every tensor, not only the changed ones");
  cmd->add_option("-t,--threads", o->threads, "threads (default: all cores)");
  cmd->callback([o] {
    if (!o->output.empty()) check_output(o->output, {o->a, o->b});
    const auto fa = fq::gguf::file::open(o->a);
    const auto fb = fq::gguf::file::open(o->b);
    // A pattern that matches nothing is a typo, not an empty comparison.
    if (!o->tensors.empty()) fq::match_tensors(fa, fq::gguf::split_patterns(o->tensors));
    const auto r = fq::stats::diff_files(fa, fb,
                                         {.tensors = o->tensors,
                                          .epsilon = o->epsilon,
                                          .all = o->all,
                                          .threads = o->threads,
                                          .kernels = fq::stats::best_kernels()});
    const auto j = fq::stats::to_json(r);
    if (o->json) {
      fmt::print("{}", dump(j));
    } else {
      print_table(r);
    }
    if (!o->output.empty()) write_text_file(o->output, dump(j));
    if (!o->svg.empty()) {
      std::filesystem::create_directories(o->svg);
      for (const auto& t : r.tensors)
        write_text_file(std::filesystem::path(o->svg) / file_name_for(t.name),
                        fq::stats::to_svg(t));
    }
    if (!r.structure_identical) {
      const auto& d = r.structure_differences;
      throw fq::error(fq::errc::invalid_argument, o->b,
                      fmt::format("structure differs from {}: {}{}", o->a, d.front(),
                                  d.size() > 1 ? fmt::format(" (and {} more)", d.size() - 1) : ""));
    }
  });
}

}  // namespace fqcli

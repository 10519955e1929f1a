// SPDX-License-Identifier: MIT
// fakequant quantize IN OUT --tensors PATTERN[,PATTERN…] --format NAME [--rounding R]
//                    [--overflow O] [--scale none|tensor|block[:B]] [--seed N] [--store same|f32]
#include <fmt/core.h>

#include <fakequant/format/codes.hpp>
#include <fakequant/format/scaling.hpp>
#include <fakequant/gguf.hpp>
#include <fakequant/quantize.hpp>

#include "checks.hpp"
#include "cli.hpp"
#include "interrupt.hpp"
#include "options.hpp"

namespace fqcli {

void register_quantize(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("quantize", "Fake-quantize chosen tensors to a narrow float format");
  struct args {
    std::string in, out, tensors, format;
    fq::quantize_options o;
    std::optional<fq::format::overflow> overflow;  // unset: the format's
  };
  auto a = std::make_shared<args>();
  cmd->add_option("IN", a->in, "GGUF file to read")->required();
  cmd->add_option("OUT", a->out, "GGUF file to write (never the input)")->required();
  cmd->add_option("--tensors", a->tensors,
                  "names or globs, comma-separated (blk.*.ffn_norm.weight)")
      ->required();
  // Parsed in the callback: an unknown format is an input error (exit status 1), not a usage error.
  cmd->add_option("--format", a->format, "bf16, fp16, fp8_e4m3, fp8_e5m2, … or ieee_eXmY")
      ->required();
  // The other names are checked by the command line (a usage error) before they are parsed.
  cmd->add_option_function<std::string>(
         "--rounding", [a](const std::string& s) { a->o.rounding.rounding = parse_rounding(s); },
         "nearest-even, toward-zero, nearest-away or stochastic")
      ->check(member_of(rounding_names));
  cmd->add_option_function<std::string>(
         "--overflow", [a](const std::string& s) { a->overflow = parse_overflow(s); },
         "saturate, saturate-inf or ieee (default: the format's)")
      ->check(member_of(overflow_names));
  cmd->add_option_function<std::string>(
         "--scale", [a](const std::string& s) { a->o.scale = parse_scale(s); },
         "none; tensor (amax / max finite); block[:B] (OCP MX: a power-of-two E8M0 scale "
         "per B elements of a row, default 32)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            try {
              parse_scale(s);
              return {};
            } catch (const fq::error& e) {
              return e.what();
            }
          },
          "none|tensor|block[:B]", "scaling"));
  cmd->add_option("--seed", a->o.rounding.seed, "seed of stochastic rounding");
  cmd->add_option_function<std::string>(
         "--store", [a](const std::string& s) { a->o.store = parse_store(s); },
         "same: keep each tensor's type where exact; f32: store F32")
      ->check(member_of(store_names));
  cmd->callback([a] {
    check_output(a->out, {a->in});
    clean_stale_temps_of(a->out);
    auto o = a->o;
    o.format = parse_format(a->format);
    o.rounding.overflow = a->overflow.value_or(o.format.default_overflow());
    const auto f = fq::gguf::file::open(a->in);
    auto b = fq::gguf::builder::from(f);
    const auto done = fq::fake_quantize_tensors(f, b, fq::gguf::split_patterns(a->tensors), o);
    b.write(a->out);
    fmt::print("{:<40} {:<6} {:>6} {:>12} {:>10} {:>14}\n", "tensor", "type", "stored", "elements",
               "changed", "max rel change");
    for (const auto& q : done) {
      fmt::print("{:<40} {:<6} {:>6} {:>12} {:>10} {:>14.6g}\n", q.name,
                 fq::gguf::type_name(q.type_in), fq::gguf::type_name(q.type_out), q.elements,
                 q.changed, q.max_rel_change);
      if (q.scale.blocks)
        fmt::print(stderr, "{}: {} blocks of {}, E8M0 scales 0x{:02X}..0x{:02X}, {} NaN blocks\n",
                   q.name, q.scale.blocks, o.scale.block, q.scale.min_code, q.scale.max_code,
                   q.scale.nan_blocks);
      else if (o.scale.mode == fq::format::scale_mode::tensor)
        fmt::print(stderr, "{}: scale {:.9g}\n", q.name, q.scale.tensor_scale);
      if (q.nan_in && !fq::format::has_nan_code(o.format))
        fmt::print(stderr,
                   "note: {}: {} NaN inputs stay NaN in the output, but {} has no NaN code: its "
                   "codes (format::encode) store NaN as the -0 code 0x{:X}\n",
                   q.name, q.nan_in, o.format.name, fq::format::nan_code(o.format));
    }
    fmt::print(stderr, "wrote {} ({} tensors rounded to {})\n", a->out, done.size(), o.format.name);
  });
}

}  // namespace fqcli

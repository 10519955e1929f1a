// SPDX-License-Identifier: MIT
// fakequant synth --preset tiny|tinyllama-1.1b [--type f32|f16|q8_0] [--seed S] [--vocab FILE] OUT
#include <fmt/core.h>

#include <fakequant/llama/synth.hpp>

#include "checks.hpp"
#include "cli.hpp"
#include "interrupt.hpp"

namespace fqcli {

void register_synth(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("synth", "Write a LLaMA model with random weights (demos, benchmarks)");
  struct opts {
    std::string preset, type = "f16", vocab, out;
    std::uint64_t seed = 42;
  };
  auto o = std::make_shared<opts>();
  cmd->add_option("--preset", o->preset,
                  "tiny (dim 64, 2 layers) or tinyllama-1.1b (TinyLlama's shapes)")
      ->required()
      ->check(CLI::IsMember({"tiny", "tinyllama-1.1b"}));
  cmd->add_option("--type", o->type, "type of the matrices (norms stay F32)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  cmd->add_option("--seed", o->seed, "random seed");
  // Not CLI::ExistingFile: the GGUF reader's errors name the problem and the fix.
  cmd->add_option("--vocab", o->vocab, "copy the vocabulary (tokenizer.*) from this llama GGUF");
  cmd->add_option("OUT", o->out, "GGUF file to write")->required();
  cmd->callback([o] {
    check_output(o->out, {o->vocab});
    clean_stale_temps_of(o->out);
    fq::llama::synth_options so;
    so.type = *fq::gguf::type_from_name(o->type);
    so.seed = o->seed;
    so.vocab_path = o->vocab;
    const auto shape = fq::llama::synth_preset(o->preset);
    fq::llama::synth(shape, so, o->out);
    fmt::print(stderr, "wrote {} ({}, {} layers, {} wide, {})\n", o->out, shape.name, shape.n_layer,
               shape.n_embd, o->type);
  });
}

}  // namespace fqcli

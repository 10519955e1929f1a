// SPDX-License-Identifier: MIT
// The fakequant program: each subcommand lives in its own cmd_<name>.cpp and registers itself on
// the CLI11 application through a function called from main.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace fqcli {

void register_inspect(CLI::App& app);
void register_copy(CLI::App& app);
void register_diff(CLI::App& app);
void register_synth(CLI::App& app);
void register_perplexity(CLI::App& app);
void register_generate(CLI::App& app);
void register_quantize(CLI::App& app);
void register_test1(CLI::App& app);
void register_sweep(CLI::App& app);

}  // namespace fqcli

// SPDX-License-Identifier: MIT
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <fakequant/error.hpp>

#include "checks.hpp"
#include "cli.hpp"
#include "interrupt.hpp"

// Exit status: 0 success, 1 an error in the input or the environment, 2 a usage error.
int main(int argc, char** argv) {
  // Ctrl-C or SIGTERM: unfinished outputs removed, exit 130 / 143 (interrupt.hpp).
  fqcli::install_interrupt_handler();
  CLI::App app{"fakequant: fake-quantization experiments on GGUF models", "fakequant"};
  app.require_subcommand(1);
  fqcli::register_inspect(app);
  fqcli::register_copy(app);
  fqcli::register_diff(app);
  fqcli::register_synth(app);
  fqcli::register_perplexity(app);
  fqcli::register_generate(app);
  fqcli::register_quantize(app);
  fqcli::register_test1(app);
  fqcli::register_sweep(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line: the option, what is wrong with it, and where the usage is.
    std::string what = e.what();
    for (auto& c : what)
      if (c == '\n') c = ' ';
    fmt::print(stderr, "fakequant: {} (run 'fakequant --help' for usage)\n", what);
    return 2;
  } catch (const fq::error& e) {
    fmt::print(stderr, "fakequant: error: {}\n", fqcli::with_fix(e));
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fakequant: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

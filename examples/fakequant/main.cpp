// SPDX-License-Identifier: MIT
#include <fmt/core.h>

#include <cstdio>
#include <exception>
#include <fakequant/error.hpp>

#include "cli.hpp"

// Exit status: 0 success, 1 an error in the input or the environment, 2 a usage error.
int main(int argc, char** argv) {
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
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "fakequant: {}\nRun 'fakequant --help' for usage.\n", e.what());
    return 2;
  } catch (const fq::error& e) {
    fmt::print(stderr, "fakequant: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "fakequant: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

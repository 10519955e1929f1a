// SPDX-License-Identifier: MIT
// fakequant copy IN OUT: read and re-write through the library.
#include <fmt/core.h>

#include <fakequant/gguf.hpp>

#include "checks.hpp"
#include "cli.hpp"
#include "interrupt.hpp"

namespace fqcli {

void register_copy(CLI::App& app) {
  auto* cmd = app.add_subcommand("copy", "Read a GGUF file and write it again through the library");
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  cmd->add_option("IN", *in, "GGUF file to read")->required();
  cmd->add_option("OUT", *out, "GGUF file to write (never the input)")->required();
  cmd->callback([=] {
    check_output(*out, {*in});
    clean_stale_temps_of(*out);
    const auto f = fq::gguf::file::open(*in);
    fq::gguf::builder::from(f).write(*out);
    fmt::print(stderr, "wrote {} ({} metadata entries, {} tensors)\n", *out, f.metadata().size(),
               f.tensors().size());
  });
}

}  // namespace fqcli

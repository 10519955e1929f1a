// SPDX-License-Identifier: MIT
// A project outside the tree: finds the installed package, writes and reads back a GGUF file.
#include <cstdio>
#include <fakequant/gguf.hpp>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::vector<float> w{1.0f, 2.0f};
  fq::gguf::builder b;
  b.set("general.name", fq::gguf::value::of("consumer"));
  b.add_tensor("w", fq::gguf::ggml_type::f32, {2},
               fq::gguf::tensor_source::bytes(std::as_bytes(std::span(w))));
  b.write(argv[1]);
  const auto f = fq::gguf::file::open(argv[1]);
  std::printf("%s %zu\n", std::string(f.get<std::string_view>("general.name")).c_str(),
              f.tensors().size());
  return f.tensors().size() == 1 ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// A project outside the tree that links only fakequant::fakequant (found as an installed package,
// or added with add_subdirectory) and uses the three kernel families as the fakequant program
// does: quantize, the paired statistics and the llama evaluator. It prints the kernels each family
// chose; run_consumer.cmake checks they are the CPU's best and that every output equals the
// program's byte for byte.
//   consumer MODEL TEXT OUT    writes OUT.q.gguf, OUT.diff.json and OUT.kld
#include <cstdio>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/kld.hpp>
#include <fakequant/llama/model.hpp>
#include <fakequant/llama/tokenizer.hpp>
#include <fakequant/quantize.hpp>
#include <fakequant/stats/diff.hpp>
#include <fakequant/stats/json.hpp>
#include <fstream>
#include <iterator>
#include <string>

int main(int argc, char** argv) try {
  if (argc != 4) {
    std::fprintf(stderr, "usage: consumer MODEL TEXT OUT\n");
    return 2;
  }
  const std::string model_path = argv[1], text_path = argv[2], out = argv[3];
  std::printf("kernels: format %s, stats %s, llama %s\n", fq::format::best_kernels().name,
              fq::stats::best_kernels().name, fq::llama::best_kernels().name);

  // As `fakequant quantize MODEL OUT.q.gguf --tensors 'blk.*.ffn_norm.weight' --format bf16`.
  const auto f = fq::gguf::file::open(model_path);
  {
    auto b = fq::gguf::builder::from(f);
    fq::quantize_options o;
    o.format = fq::format::bf16;
    o.rounding.overflow = o.format.default_overflow();
    fq::fake_quantize_tensors(f, b, {"blk.*.ffn_norm.weight"}, o);
    b.write(out + ".q.gguf");
  }

  // As `fakequant diff MODEL OUT.q.gguf --output OUT.diff.json`.
  {
    const auto q = fq::gguf::file::open(out + ".q.gguf");
    std::ofstream(out + ".diff.json")
        << fq::stats::to_json(fq::stats::diff_files(f, q)).dump(2) << "\n";
  }

  // As `fakequant perplexity -m MODEL -f TEXT -c 128 -b 128 --chunks 2 --kl-divergence-base
  // OUT.kld`.
  {
    const auto m = fq::llama::model::load(f);
    const auto tok = fq::llama::tokenizer::from_file(f);
    std::ifstream in(text_path, std::ios::binary);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    fq::llama::perplexity_options o;
    o.n_ctx = 128;
    o.n_batch = 128;
    o.max_chunks = 2;
    o.bos = tok.bos();
    o.add_bos = tok.add_bos();
    const auto r = fq::llama::write_kld_base(m, tok.encode(text, true, false), o, out + ".kld",
                                             fq::llama::kld_format::f32);
    std::printf("PPL = %.17g over %zu chunks\n", r.ppl, r.n_chunks);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "consumer: %s\n", e.what());
  return 1;
}

// SPDX-License-Identifier: MIT
// The thread pool and the evaluator on several threads. Small enough to run under ThreadSanitizer
// (scripts/ci/tsan.sh), which is where a data race between the pieces would show.
#include <atomic>
#include <cstring>
#include <fakequant/gguf.hpp>
#include <fakequant/llama/context.hpp>
#include <fakequant/llama/synth.hpp>
#include <fakequant/thread_pool.hpp>
#include <stdexcept>
#include <vector>

#include "support.hpp"

TEST_CASE("threads: the pool hands out every index exactly once, in contiguous pieces") {
  for (std::size_t size : {1, 2, 3, 5}) {
    fq::thread_pool pool(size);
    CHECK(pool.size() == size);
    for (std::size_t n : {0, 1, 2, 3, 7, 64, 1000}) {
      for (std::size_t grain : {1, 4, 100}) {
        CAPTURE(size);
        CAPTURE(n);
        CAPTURE(grain);
        // Each index is written by the one piece that owns it, without a lock: ThreadSanitizer
        // reports the pool if two pieces overlap or a piece runs after parallel_for returned.
        std::vector<int> hits(n, 0);
        std::vector<std::size_t> owner(n, 99);
        std::atomic<std::size_t> pieces{0}, bad_thread{0};
        pool.parallel_for(
            n,
            [&](std::size_t b, std::size_t e, std::size_t thread) {
              if (thread >= size) ++bad_thread;
              ++pieces;
              for (std::size_t i = b; i < e; ++i) {
                ++hits[i];
                owner[i] = b;
              }
            },
            grain);
        std::size_t wrong = 0;
        for (std::size_t i = 0; i < n; ++i) wrong += hits[i] != 1;
        CHECK(wrong == 0);
        CHECK(bad_thread == 0);
        CHECK(pieces <= std::max<std::size_t>(1, std::min(size, (n + grain - 1) / grain)));
        // Contiguous: a piece's first index owns everything up to the next piece's.
        for (std::size_t i = 1; i < n; ++i)
          if (owner[i] != owner[i - 1]) CHECK(owner[i] == i);
      }
    }
  }
}

TEST_CASE("threads: the pool rethrows a piece's exception and runs the next job") {
  fq::thread_pool pool(3);
  for (int round = 0; round < 50; ++round) {
    std::atomic<std::size_t> done{0};
    CHECK_THROWS_AS(pool.parallel_for(30,
                                      [&](std::size_t b, std::size_t e, std::size_t) {
                                        if (b == 0) throw std::runtime_error("piece 0");
                                        done += e - b;
                                      }),
                    std::runtime_error);
    CHECK(done == 20);  // the other two pieces of 10 still ran
    std::vector<double> out(99);
    pool.parallel_for(out.size(), [&](std::size_t b, std::size_t e, std::size_t) {
      for (std::size_t i = b; i < e; ++i) out[i] = static_cast<double>(i) * 0.5;
    });
    CHECK(out[98] == 49.0);
  }
}

TEST_CASE("threads: the evaluator's logits are bit-identical on 1, 2 and 3 threads") {
  fq_test::temp_dir dir;
  for (auto type : {fq::gguf::ggml_type::f16, fq::gguf::ggml_type::q8_0}) {
    CAPTURE(fq::gguf::type_name(type));
    const auto path = dir / "tiny.gguf";
    fq::llama::synth_options so;
    so.type = type;
    fq::llama::synth(fq::llama::synth_preset("tiny"), so, path);
    const auto f = fq::gguf::file::open(path.string());
    const auto m = fq::llama::model::load(f);
    const std::vector<std::int32_t> prompt{1, 300, 301, 302, 17, 90}, next{411};
    std::vector<std::vector<float>> runs;
    for (std::size_t threads : {1, 2, 3}) {
      fq::llama::context ctx(m, 32, {.threads = threads});
      REQUIRE(ctx.threads() == threads);
      std::vector<float> logits, more;
      ctx.eval(prompt, 0, logits);  // a batch: matrix products over rows
      ctx.eval(next, 0, more);      // one token: matrix-vector products
      logits.insert(logits.end(), more.begin(), more.end());
      runs.push_back(std::move(logits));
    }
    REQUIRE(runs[0].size() == 7 * 512);
    for (std::size_t k = 1; k < runs.size(); ++k)
      CHECK(std::memcmp(runs[0].data(), runs[k].data(), runs[0].size() * 4) == 0);
  }
}

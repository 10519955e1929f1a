// SPDX-License-Identifier: MIT
// Helpers shared by the benchmarks: scratch files, peak anonymous memory.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace fq_bench {

/// Current RssAnon of this process in bytes (anonymous memory, not the page cache of mapped files).
inline std::uint64_t rss_anon() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "RssAnon:") {
      std::uint64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    std::getline(in, key);
  }
  return 0;
}

/// Samples RssAnon every millisecond while alive; peak() is the largest value seen.
class anon_peak_sampler {
 public:
  anon_peak_sampler()
      : peak_(rss_anon()), thread_([this] {
          while (!stop_.load()) {
            const auto v = rss_anon();
            if (v > peak_.load()) peak_.store(v);
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
          }
        }) {}
  ~anon_peak_sampler() { stop(); }
  std::uint64_t stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return peak_.load();
  }

 private:
  std::atomic<std::uint64_t> peak_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Scratch folder for large benchmark files (FQ_BENCH_DIR, default: the system temp folder).
inline std::filesystem::path scratch_dir() {
  const char* d = std::getenv("FQ_BENCH_DIR");
  auto p = std::filesystem::path(d ? d : std::filesystem::temp_directory_path().string()) /
           "fakequant-bench";
  std::filesystem::create_directories(p);
  return p;
}

/// Size of the generated "2 GB model" in MiB (FQ_BENCH_MODEL_MB, default 2048).
inline std::uint64_t model_mib() {
  const char* s = std::getenv("FQ_BENCH_MODEL_MB");
  return s ? std::strtoull(s, nullptr, 10) : 2048;
}

}  // namespace fq_bench

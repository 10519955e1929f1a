// SPDX-License-Identifier: MIT
// A small fixed-size thread pool for data-parallel loops. Work is split into contiguous ranges by
// index only, so which thread computes an element never changes what is computed: results do not
// depend on the thread count.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace fq {

class thread_pool {
 public:
  /// `n` threads in all, the caller's included (n - 1 workers are started); 0 means all cores.
  explicit thread_pool(std::size_t n = 0) {
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 1; i < n; ++i) workers_.emplace_back([this, i] { run(i); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  std::size_t size() const noexcept { return workers_.size() + 1; }

  /// Calls fn(begin, end, thread) on `parts` contiguous pieces of [0, n), in parallel; returns
  /// when all are done. The first exception thrown by a piece is rethrown here.
  void parallel_for(std::size_t n,
                    const std::function<void(std::size_t, std::size_t, std::size_t)>& fn,
                    std::size_t grain = 1) {
    if (n == 0) return;
    const std::size_t parts = std::min(size(), (n + grain - 1) / grain);
    if (parts <= 1) {
      fn(0, n, 0);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      job_ = &fn;
      n_ = n;
      parts_ = parts;
      next_ = 0;
      pending_ = parts;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    work(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run(std::size_t id) {
    std::size_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      work(id);
    }
  }
  // Takes pieces until none is left.
  void work(std::size_t thread) {
    for (;;) {
      std::size_t part;
      const std::function<void(std::size_t, std::size_t, std::size_t)>* job;
      {
        std::lock_guard lock(mutex_);
        if (!job_ || next_ >= parts_) return;
        part = next_++;
        job = job_;
      }
      const std::size_t b = n_ * part / parts_, e = n_ * (part + 1) / parts_;
      try {
        (*job)(b, e, thread);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t, std::size_t, std::size_t)>* job_ = nullptr;
  std::size_t n_ = 0, parts_ = 0, next_ = 0, pending_ = 0, generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

}  // namespace fq

// SPDX-License-Identifier: MIT
// Helpers shared by the tests: the ../shared data folder, scratch folders, running the program.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace fq_test {

namespace fs = std::filesystem;

/// ../shared beside the project, or an empty path when it is absent (a user's fresh clone).
inline fs::path shared_dir() {
  fs::path p = FQ_SHARED_DIR;
  std::error_code ec;
  return fs::is_directory(p / "testdata", ec) ? p : fs::path{};
}

/// Announces that (part of) a test cannot run, and why. The marker makes ctest report the test as
/// skipped, never as passed (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt), and .ci/run fails
/// on a skip whose reason is not in .ci/allowed-skips.
inline void skip(const std::string& why) {
  std::fprintf(stderr, "FQ-SKIPPED: %s\n", why.c_str());
  MESSAGE("FQ-SKIPPED: " << why);
}

/// Returns the shared sub-path, or an empty path after announcing the skip.
inline fs::path require_shared(const char* what) {
  fs::path root = shared_dir();
  if (root.empty()) {
    skip(std::string("../shared test data absent: ") + what);
    return {};
  }
  return root / what;
}

/// A fresh scratch folder removed at scope exit.
class temp_dir {
 public:
  temp_dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("fq-test-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline std::vector<char> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const fs::path& p, const void* data, std::size_t n) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
}

/// Whitespace-separated token ids, as in ../shared/reference/*/tokens-*.txt.
inline std::vector<std::int32_t> read_token_ids(const fs::path& p) {
  std::ifstream in(p);
  std::vector<std::int32_t> ids;
  for (std::int32_t t; in >> t;) ids.push_back(t);
  return ids;
}

/// Result of running the fakequant program.
struct run_result {
  int status = -1;  ///< exit status, or -1 when the process died on a signal
  std::string out;
  std::string err;
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  q += '\'';
  return q;
}

/// Runs the fakequant program with `args` (each passed as one argument, no shell expansion) and
/// `input` on its standard input.
inline run_result run_program(const std::vector<std::string>& args, const std::string& input = "") {
  temp_dir tmp;
  const auto out = tmp / "out", err = tmp / "err", in = tmp / "in";
  write_bytes(in, input.data(), input.size());
  std::string cmd = quote(FQ_PROGRAM);
  for (const auto& a : args) {
    cmd += ' ';
    cmd += quote(a);
  }
  cmd += " >" + quote(out.string()) + " 2>" + quote(err.string()) + " <" + quote(in.string());
  const int raw = std::system(cmd.c_str());
  run_result r;
  r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  auto o = read_bytes(out), e = read_bytes(err);
  r.out.assign(o.begin(), o.end());
  r.err.assign(e.begin(), e.end());
  return r;
}

}  // namespace fq_test

// SPDX-License-Identifier: MIT
// Bad input refused early, in one line that names the thing and the fix: option numbers, text
// files, output paths (compared with the inputs by file identity, so ./x, links and hard links are
// caught), and the fix appended to library errors that only say what is wrong.
#pragma once

#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fakequant/error.hpp>
#include <fakequant/utf8.hpp>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>

namespace fqcli {

namespace fs = std::filesystem;

/// CLI11 check: a finite number in [lo, hi]. CLI::Range and CLI::NonNegativeNumber let NaN through
/// (every comparison with NaN is false) and print the largest double in full as the bound.
inline CLI::Validator finite_in(double lo, double hi = HUGE_VAL) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        const char* p = s.c_str();
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(p, &end);
        const bool number = end != p && *end == '\0' && errno != ERANGE;
        if (number && std::isfinite(v) && v >= lo && v <= hi) return {};
        const std::string range = std::isinf(hi) ? fmt::format("a finite number >= {}", lo)
                                                 : fmt::format("a number from {} to {}", lo, hi);
        return fmt::format("'{}' is not {}", s, range);
      },
      "FINITE");
}

/// A text file given as input (perplexity text, test1's --text): the whole file, or an error for a
/// missing, unreadable, directory, empty or non-UTF-8 file. `option` names the option in fixes.
inline std::string read_text_input(const std::string& path, std::string_view option = "-f") {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw fq::error(errno == ENOENT ? fq::errc::not_found : fq::errc::io_error, path,
                    fmt::format("cannot open the text file: {}; check the path given to {}",
                                std::strerror(errno), option));
  if (S_ISDIR(st.st_mode))
    throw fq::error(fq::errc::invalid_argument, path,
                    fmt::format("is a directory; give {} the text file inside it", option));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw fq::error(
        fq::errc::io_error, path,
        fmt::format("cannot read the text file: {}; check its permissions", std::strerror(errno)));
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.empty())
    throw fq::error(fq::errc::invalid_argument, path,
                    "the text file is empty; give a text of a few thousand words "
                    "(e.g. wiki.test.raw)");
  if (const auto bad = fq::first_invalid_utf8(s); bad != std::string_view::npos)
    throw fq::error(fq::errc::invalid_argument, path, bad,
                    "the text is not valid UTF-8; convert it first "
                    "(e.g. iconv -f LATIN1 -t UTF-8)");
  return s;
}

/// Refuses, before any work, an output that is a directory, that is one of `inputs` (same device
/// and inode: ./x, symbolic and hard links), or whose folder is missing or read-only.
inline void check_output(const fs::path& out, std::initializer_list<fs::path> inputs) {
  const std::string s = out.string();
  struct stat st {};
  if (::stat(s.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      throw fq::error(fq::errc::invalid_argument, s,
                      "the output is a directory; give a file name inside it");
    for (const auto& in : inputs) {
      struct stat si {};
      if (!in.empty() && ::stat(in.c_str(), &si) == 0 && si.st_dev == st.st_dev &&
          si.st_ino == st.st_ino)
        throw fq::error(fq::errc::same_file, s,
                        "is the input file " + in.string() +
                            "; refusing to overwrite it, choose another output path");
    }
  }
  fs::path dir = out.parent_path();
  if (dir.empty()) dir = ".";
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw fq::error(fq::errc::not_found, s,
                    "output folder " + dir.string() +
                        " does not exist; create it (mkdir -p) or choose another output path");
  if (::access(dir.c_str(), W_OK) != 0)
    throw fq::error(fq::errc::io_error, s,
                    "output folder " + dir.string() + " is not writable (" + std::strerror(errno) +
                        "); choose another output folder");
}

/// The message of a library error, with the fix added where the library only says what is wrong.
inline std::string with_fix(const fq::error& e) {
  std::string m = e.what();
  auto has = [&](std::string_view w) { return m.find(w) != std::string::npos; };
  const char* fix = nullptr;
  using fq::errc;
  switch (e.code()) {
    case errc::truncated:
    case errc::bad_magic:
    case errc::unsupported_version:
    case errc::big_endian:
    case errc::bad_value_type:
    case errc::bad_key:
    case errc::bad_alignment:
    case errc::bad_tensor:
    case errc::size_overflow:
    case errc::bad_layout:
    case errc::limit_exceeded:
      fix = "the file is damaged or not a GGUF model: download or convert it again";
      break;
    case errc::not_found:
      if (has("No such file")) fix = "check the path";
      if (has("no tensor matches")) fix = "'fakequant inspect FILE' lists the tensor names";
      if (has("does not exist") && has("folder")) fix = "create it or choose another output path";
      break;
    case errc::io_error:
      if (has("Permission denied")) fix = "check the permissions of the file and its folder";
      if (has("Read-only file system")) fix = "choose a writable output folder";
      if (has("No space left") || has("File too large") || has("Disk quota"))
        fix = "free disk space or choose another output folder, then rerun (nothing was written)";
      break;
    case errc::invalid_argument:
      if (has("is a directory")) fix = "give the path of a file";
      if (has("not a regular file")) fix = "give the path of a regular file";
      break;
    default:
      break;
  }
  if (fix != nullptr && !has("; ")) m += std::string("; ") + fix;
  for (auto& c : m)
    if (c == '\n' || c == '\r') c = ' ';
  return m;
}

}  // namespace fqcli

// SPDX-License-Identifier: MIT
// An output file that appears under its final name only when complete: written to a temporary file
// in the target folder (same file system, so the rename is atomic), flushed, then renamed. If the
// object is destroyed before commit() — an exception, an early return — the temporary is removed.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "error.hpp"

namespace fq {

class atomic_file {
 public:
  /// Prefix of every temporary name, so interrupted runs' leftovers can be recognised.
  static constexpr std::string_view temp_marker = ".fqtmp-";

  /// Creates the temporary file for `target`. The target's folder must exist.
  explicit atomic_file(std::filesystem::path target) : target_(std::move(target)) {
    std::filesystem::path dir = target_.parent_path();
    if (dir.empty()) dir = ".";
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw error(errc::not_found, target_.string(),
                  "output folder " + dir.string() + " does not exist");
    temp_ =
        (dir / ("." + target_.filename().string() + std::string(temp_marker) + "XXXXXX")).string();
    fd_ = ::mkstemp(temp_.data());
    if (fd_ < 0)
      throw error(errno == EACCES || errno == EROFS ? errc::io_error : errc::io_error,
                  target_.string(),
                  "cannot create a file in " + dir.string() + ": " + std::strerror(errno));
    // mkstemp creates 0600; give the file the permissions an ordinary create would.
    const mode_t mask = ::umask(0);
    ::umask(mask);
    ::fchmod(fd_, 0666 & ~mask);
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() { discard(); }

  int fd() const noexcept { return fd_; }
  std::uint64_t size() const noexcept { return pos_; }
  const std::filesystem::path& target() const noexcept { return target_; }
  const std::string& temp_path() const noexcept { return temp_; }

  /// Appends `data`. Runs of zeros are skipped rather than written, so they stay holes: a
  /// mostly-empty multi-gigabyte tensor costs little disk and no write time. (The file is written
  /// front to back, so a skipped range was never written and reads as zeros.)
  void write(std::span<const std::byte> data) {
    const std::uint64_t start = pos_;
    // The piece at `at` ends at the next file-system block boundary, so zero runs cover whole
    // blocks wherever the data allows.
    auto piece = [&](std::size_t at) {
      return static_cast<std::size_t>(
          std::min<std::uint64_t>(data.size() - at, hole_block - (start + at) % hole_block));
    };
    std::size_t i = 0;
    while (i < data.size()) {
      std::size_t n = piece(i);
      const bool zero = all_zero(data.subspan(i, n));
      while (i + n < data.size() && n < chunk) {  // a run of pieces alike, up to one chunk
        const std::size_t m = piece(i + n);
        if (all_zero(data.subspan(i + n, m)) != zero) break;
        n += m;
      }
      if (zero) {
        skip(n);
      } else {
        write_bytes(data.subspan(i, n));
      }
      i += n;
    }
  }
  void write(std::string_view s) { write(std::as_bytes(std::span(s.data(), s.size()))); }

  /// Appends zero bytes up to absolute position `target`.
  void pad_to(std::uint64_t target) {
    static constexpr std::byte zeros[4096] = {};
    while (pos_ < target)
      write(
          {zeros, static_cast<std::size_t>(std::min<std::uint64_t>(target - pos_, sizeof zeros))});
  }

  /// Appends `size` bytes of file descriptor `in_fd` from `offset`, copied by the kernel where the
  /// file systems allow; `fallback` (the same bytes, e.g. from a mapping) is written otherwise.
  /// Holes of the source (SEEK_DATA/SEEK_HOLE) stay holes: copy_file_range would write them out as
  /// zeros, on ext4 at disk speed.
  void copy_from(int in_fd, std::uint64_t offset, std::span<const std::byte> fallback) {
    const std::uint64_t end = fallback.size();
    std::uint64_t done = 0;
    bool in_kernel = true;
    while (done < end) {
      const auto [data, hole] = next_data(in_fd, offset, done, end);
      if (data > done) skip(data - done);
      done = data;
      while (done < hole && in_kernel) {
        loff_t in_off = static_cast<loff_t>(offset + done);
        const auto n = ::copy_file_range(in_fd, &in_off, fd_, nullptr,
                                         std::min<std::uint64_t>(hole - done, chunk), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == ENOSPC || errno == EFBIG || errno == EIO)) fail("write failed");
        if (n <= 0) {  // unsupported here (EXDEV, EINVAL, ENOSYS…): finish with write()
          in_kernel = false;
          break;
        }
        done += static_cast<std::uint64_t>(n);
        advance(static_cast<std::uint64_t>(n));
      }
      if (done < hole) {
        write(fallback.subspan(static_cast<std::size_t>(done),
                               static_cast<std::size_t>(hole - done)));
        done = hole;
      }
    }
  }

  /// Flushes to stable storage and renames the temporary over the target.
  void commit() {
    // A trailing hole was only seeked over: the size must still be set.
    if (hole_at_end_ && ::ftruncate(fd_, static_cast<off_t>(pos_)) != 0) fail("write failed");
    if (::fdatasync(fd_) != 0) fail("cannot flush");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) fail("cannot close");
    if (::rename(temp_.c_str(), target_.c_str()) != 0) fail("cannot rename into place");
    committed_ = true;
  }

  /// Removes the temporary file (no-op after commit).
  void discard() noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!committed_ && !temp_.empty()) {
      ::unlink(temp_.c_str());
      temp_.clear();
    }
  }

 private:
  // Bytes per system call. Measured on ext4 copying 2 GB: copy_file_range in 8 MiB pieces runs at
  // about twice cp's speed, in 1 GiB pieces ten times slower (page-cache pressure).
  static constexpr std::uint64_t chunk = 8u << 20;
  // Zero runs are cut at multiples of this (the usual file-system block) so they cover whole
  // blocks, which then stay holes.
  static constexpr std::size_t hole_block = 4096;

  static bool all_zero(std::span<const std::byte> b) noexcept {
    std::uint64_t acc = 0;  // branch-free over the block; the compiler vectorises it
    for (std::size_t i = 0; i + 8 <= b.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, b.data() + i, 8);
      acc |= w;
    }
    for (std::size_t i = b.size() & ~std::size_t{7}; i < b.size(); ++i)
      acc |= std::to_integer<std::uint64_t>(b[i]);
    return acc == 0;
  }

  void write_bytes(std::span<const std::byte> data) {
    const std::byte* p = data.data();
    std::uint64_t n = data.size();
    while (n > 0) {
      const auto w = ::write(fd_, p, std::min<std::uint64_t>(n, chunk));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write failed");
      }
      p += w;
      n -= static_cast<std::uint64_t>(w);
      hole_at_end_ = false;
      advance(static_cast<std::uint64_t>(w));
    }
  }

  // Moves the write position `n` bytes on; what lies between reads as zeros.
  void skip(std::uint64_t n) {
    if (n == 0) return;
    if (::lseek(fd_, static_cast<off_t>(n), SEEK_CUR) < 0) fail("cannot seek");
    hole_at_end_ = true;
    pos_ += n;
  }

  // The next stretch [data, hole) of `in_fd` holding data, within [done, end) of the range that
  // starts at `offset`; {end, end} when only holes are left. File systems that cannot tell report
  // everything as data.
  static std::pair<std::uint64_t, std::uint64_t> next_data(int in_fd, std::uint64_t offset,
                                                           std::uint64_t done, std::uint64_t end) {
    const off_t d = ::lseek(in_fd, static_cast<off_t>(offset + done), SEEK_DATA);
    if (d < 0) return errno == ENXIO ? std::pair{end, end} : std::pair{done, end};
    const std::uint64_t data = static_cast<std::uint64_t>(d) - offset;
    if (data >= end) return {end, end};
    const off_t h = ::lseek(in_fd, d, SEEK_HOLE);
    const std::uint64_t hole = h < 0 ? end : static_cast<std::uint64_t>(h) - offset;
    return {data, std::min(hole, end)};
  }

  // Starts write-back of every complete chunk as soon as it is written, so the disk works while
  // the copy goes on and the final flush has little left to do: a durable 2 GB write then takes
  // about as long as cp's non-durable one, instead of that plus a long fdatasync.
  void advance(std::uint64_t n) noexcept {
    pos_ += n;
    if (pos_ - started_ >= chunk) {
      ::sync_file_range(fd_, static_cast<off64_t>(started_), static_cast<off64_t>(pos_ - started_),
                        SYNC_FILE_RANGE_WRITE);
      started_ = pos_;
    }
  }

  [[noreturn]] void fail(const char* what) {
    const int e = errno;
    discard();
    throw error(errc::io_error, target_.string(), std::string(what) + ": " + std::strerror(e));
  }

  std::filesystem::path target_;
  std::string temp_;
  int fd_ = -1;
  std::uint64_t pos_ = 0;
  std::uint64_t started_ = 0;  // write-back requested up to here
  bool hole_at_end_ = false;   // the last bytes were skipped, not written
  bool committed_ = false;
};

}  // namespace fq

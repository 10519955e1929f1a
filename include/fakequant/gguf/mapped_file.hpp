// SPDX-License-Identifier: MIT
// A read-only memory map of a whole file: tensor data is exposed as views into it, never copied.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include "../error.hpp"

namespace fq::gguf {

class mapped_file {
 public:
  mapped_file() = default;

  /// Maps `path` read-only. The file is never opened for writing.
  static mapped_file open(const std::string& path) {
    mapped_file m;
    m.path_ = path;
    m.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (m.fd_ < 0) {
      const int e = errno;
      throw error(e == ENOENT ? errc::not_found : errc::io_error, path,
                  std::string("cannot open: ") + std::strerror(e));
    }
    struct stat st {};
    if (::fstat(m.fd_, &st) != 0)
      throw error(errc::io_error, path, std::string("cannot stat: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode))
      throw error(errc::invalid_argument, path, "is a directory, not a file");
    if (!S_ISREG(st.st_mode)) throw error(errc::invalid_argument, path, "is not a regular file");
    // Sizes and offsets are 64-bit throughout; only a 32-bit address space cannot map a file over
    // 4 GiB whole, and must say so rather than map a truncated size.
    if constexpr (sizeof(std::size_t) < sizeof(st.st_size))
      if (static_cast<std::uint64_t>(st.st_size) > SIZE_MAX)
        throw error(errc::limit_exceeded, path,
                    "file of " + std::to_string(st.st_size) +
                        " bytes is too large to map in a 32-bit process");
    m.size_ = static_cast<std::size_t>(st.st_size);
    if (m.size_ > 0) {
      void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, m.fd_, 0);
      if (p == MAP_FAILED)
        throw error(errc::io_error, path, std::string("cannot map: ") + std::strerror(errno));
      m.data_ = static_cast<const std::byte*>(p);
    }
    return m;
  }

  /// A non-owning view of bytes in memory, named `name` in error messages. The bytes must outlive
  /// the object. Lets a buffer (a fuzzer's input, a download) be validated like a file.
  static mapped_file view(std::span<const std::byte> bytes, std::string name) {
    mapped_file m;
    m.path_ = std::move(name);
    m.data_ = bytes.data();
    m.size_ = bytes.size();
    m.owned_ = false;
    return m;
  }

  mapped_file(mapped_file&& o) noexcept { swap(o); }
  mapped_file& operator=(mapped_file&& o) noexcept {
    mapped_file tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file() {
    if (data_ && owned_) ::munmap(const_cast<std::byte*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }

  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& path() const noexcept { return path_; }
  /// The open descriptor, for in-kernel copies (copy_file_range) and identity checks; -1 for a
  /// view of memory.
  int fd() const noexcept { return fd_; }

 private:
  void swap(mapped_file& o) noexcept {
    std::swap(path_, o.path_);
    std::swap(fd_, o.fd_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(owned_, o.owned_);
  }

  std::string path_;
  int fd_ = -1;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  bool owned_ = true;
};

}  // namespace fq::gguf

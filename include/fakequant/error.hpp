// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace fq {

/// What went wrong. Tests assert on these codes; messages are for people.
enum class errc : int {
  io_error,             ///< the operating system refused a read, write, map or rename
  not_found,            ///< a file, key, tensor or name that was asked for does not exist
  truncated,            ///< the file ends before a structure it declares
  bad_magic,            ///< not a GGUF file
  unsupported_version,  ///< GGUF v1, v0 or a version from the future
  big_endian,           ///< a byte-swapped GGUF file
  bad_value_type,       ///< a metadata value type outside 0..12, or an array of arrays
  type_mismatch,        ///< a value was asked for as a type it does not have
  bad_key,              ///< empty, overlong or non-UTF-8 key, or a duplicate
  bad_alignment,        ///< general.alignment not a u32 power of two within bounds
  bad_tensor,           ///< a tensor's name, dimensions or type are invalid
  size_overflow,        ///< a size or count that does not fit 64 bits
  bad_layout,           ///< tensor data unaligned, overlapping, or outside the file
  limit_exceeded,       ///< a count or length beyond what the file can hold
  invalid_argument,     ///< a caller-supplied value is invalid
  same_file,            ///< an output would overwrite an input
  unsupported,          ///< valid input that this operation cannot handle
  numeric,              ///< NaN, Inf or a value outside a format's range where it must not be
};

/// Stable lower-case name of an error code, used in messages and JSON.
constexpr std::string_view to_string(errc code) noexcept {
  switch (code) {
    case errc::io_error:
      return "io_error";
    case errc::not_found:
      return "not_found";
    case errc::truncated:
      return "truncated";
    case errc::bad_magic:
      return "bad_magic";
    case errc::unsupported_version:
      return "unsupported_version";
    case errc::big_endian:
      return "big_endian";
    case errc::bad_value_type:
      return "bad_value_type";
    case errc::type_mismatch:
      return "type_mismatch";
    case errc::bad_key:
      return "bad_key";
    case errc::bad_alignment:
      return "bad_alignment";
    case errc::bad_tensor:
      return "bad_tensor";
    case errc::size_overflow:
      return "size_overflow";
    case errc::bad_layout:
      return "bad_layout";
    case errc::limit_exceeded:
      return "limit_exceeded";
    case errc::invalid_argument:
      return "invalid_argument";
    case errc::same_file:
      return "same_file";
    case errc::unsupported:
      return "unsupported";
    case errc::numeric:
      return "numeric";
  }
  return "unknown";
}

/// The one error type of fakequant: a code, the file it concerns (may be empty), the byte offset in
/// that file (or `no_offset`) and a message. `what()` is a single line: "FILE: byte N: MESSAGE".
class error : public std::runtime_error {
 public:
  static constexpr std::uint64_t no_offset = ~std::uint64_t{0};

  error(errc code, std::string file, std::uint64_t offset, std::string message)
      : std::runtime_error(compose(file, offset, message)),
        code_(code),
        offset_(offset),
        file_(std::move(file)),
        message_(std::move(message)) {}
  error(errc code, std::string file, std::string message)
      : error(code, std::move(file), no_offset, std::move(message)) {}

  errc code() const noexcept { return code_; }
  const std::string& file() const noexcept { return file_; }
  std::uint64_t offset() const noexcept { return offset_; }
  bool has_offset() const noexcept { return offset_ != no_offset; }
  const std::string& message() const noexcept { return message_; }

 private:
  static std::string compose(const std::string& file, std::uint64_t offset,
                             const std::string& message) {
    std::string s;
    if (!file.empty()) s += file + ": ";
    if (offset != no_offset) s += "byte " + std::to_string(offset) + ": ";
    s += message;
    return s;
  }

  errc code_;
  std::uint64_t offset_;
  std::string file_;
  std::string message_;
};

}  // namespace fq

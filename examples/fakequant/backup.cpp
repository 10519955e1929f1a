// SPDX-License-Identifier: MIT
// Phase 1 of the plan (pipeline.hpp): the verified backup of the original, its SHA-256 (computed
// while the backup is copied, or taken from an earlier run's record), the text and the environment.
#include <fmt/core.h>
#include <sys/stat.h>

#include <fakequant/equal_bytes.hpp>
#include <fakequant/llama/synth.hpp>
#include <fakequant/sha256.hpp>
#include <future>
#include <optional>
#include <thread>

#include "json_util.hpp"
#include "pipeline.hpp"

namespace fqcli::pipeline {

namespace {

std::string sha256_of(const fs::path& p) {
  const auto m = fq::gguf::mapped_file::open(p.string());
  fq::sha256 h;
  h.update(m.bytes());
  return h.hex();
}

// The digest in BACKUP.sha256 when that record is newer than the last change of the original and of
// the backup: their status-change times, which no one can set back, say whether either file was
// written, replaced or touched since the digest was computed.
std::optional<std::string> recorded_sha256(const fs::path& original, const fs::path& backup) {
  const std::string record = backup.string() + ".sha256";
  struct stat r {
  }, o{}, b{};
  if (::stat(record.c_str(), &r) != 0 || ::stat(original.c_str(), &o) != 0 ||
      ::stat(backup.c_str(), &b) != 0)
    return std::nullopt;
  const auto newer = [](const timespec& x, const timespec& y) {
    return x.tv_sec != y.tv_sec ? x.tv_sec > y.tv_sec : x.tv_nsec > y.tv_nsec;
  };
  if (!newer(r.st_mtim, o.st_ctim) || !newer(r.st_mtim, b.st_ctim)) return std::nullopt;
  std::ifstream in(record);
  std::string digest, name;
  if (!(in >> digest >> name) || digest.size() != 64 ||
      digest.find_first_not_of("0123456789abcdef") != std::string::npos ||
      name != backup.filename().string())
    return std::nullopt;
  return digest;
}

bool same_bytes(const fs::path& a, const fs::path& b) {
  if (fs::file_size(a) != fs::file_size(b)) return false;
  const auto ma = fq::gguf::mapped_file::open(a.string());
  const auto mb = fq::gguf::mapped_file::open(b.string());
  fq::thread_pool pool;
  return fq::equal_bytes(ma.bytes(), mb.bytes(), &pool);
}

// Copies `from` to `to` through a temporary file, unless `to` already holds the same bytes; either
// way the backup is compared byte for byte with the original (after the copy is flushed), so
// nothing about it is taken on trust. A full comparison proves more than comparing two digests
// and reads each file once; the original's SHA-256 is recorded beside it (record_sha256).
bool backup(const fs::path& from, const fs::path& to) {
  if (fs::exists(to) && same_bytes(from, to)) return false;  // reused
  const auto src = fq::gguf::mapped_file::open(from.string());
  fq::atomic_file out(to);
  out.copy_from(src.fd(), 0, src.bytes());
  out.commit();
  if (!same_bytes(from, to))
    throw fq::error(fq::errc::io_error, to.string(),
                    "the backup differs from the original after copying");
  return true;
}

constexpr const char* demo_text =
    "The quick brown fox jumps over the lazy dog. Fake quantization rounds each weight to a "
    "narrower format and stores it back as float32, so the model keeps its structure and any "
    "runtime loads it unchanged. The experiment measures what the rounding does to the model.\n";

}  // namespace
prepared prepare(const common_args& a, run_log& log) {
  prepared p;
  p.data = fs::path(a.workdir) / "data";
  fs::create_directories(p.data);
  fs::path model_src = a.model, text_src = a.text;
  p.ppl.n_ctx = a.ctx;
  p.ppl.n_batch = a.batch;
  p.ppl.max_chunks = a.chunks;
  if (a.demo) {
    if (model_src.empty()) {
      model_src = p.data / "demo_model.gguf";
      log.step("synth a demo model (tiny preset)",
               [&] { fq::llama::synth(fq::llama::synth_preset("tiny"), {}, model_src); });
    }
    if (text_src.empty()) {
      text_src = p.data / "demo_text.txt";
      std::string t;
      for (int i = 0; i < 40; ++i) t += demo_text;
      write_text_file(text_src, t);
    }
    if (a.ctx == 512) p.ppl.n_ctx = 128;
  }
  if (model_src.empty()) throw CLI::ValidationError("--model", "a model is required (or --demo)");
  if (text_src.empty()) throw CLI::ValidationError("--text", "a text file is required (or --demo)");
  p.original = p.data / "original_model.gguf";
  p.text = p.data / text_src.filename();
  // A digest an earlier run recorded still holds when neither file has changed since; otherwise the
  // original is hashed on its own thread while the backup is copied and phase 2 runs.
  auto recorded = recorded_sha256(model_src, p.original);
  const auto hash_original = [&] {
    p.sha256 = std::async(std::launch::async, [src = model_src] { return sha256_of(src); }).share();
  };
  if (!recorded) hash_original();
  log.step("back up the original model (compared in full)", [&] {
    const bool copied = backup(model_src, p.original);
    log.note(copied ? "  copied " + model_src.string() +
                          " (the copy compared byte for byte with the original)"
                    : "  reused the verified backup (compared byte for byte with the original)");
    if (copied && recorded) {  // the record does not describe this backup: hash afresh
      recorded.reset();
      hash_original();
    }
  });
  if (recorded) {
    std::promise<std::string> ready;
    ready.set_value(*recorded);
    p.sha256 = ready.get_future().share();
    p.sha256_recorded = true;
  }
  if (fs::absolute(text_src) != fs::absolute(p.text)) write_text_file(p.text, read_file(text_src));
  const auto kernels = fq::llama::best_kernels();
  p.environment = {
      {"kernels", kernels.name},
      {"threads", a.threads ? a.threads : std::thread::hardware_concurrency()},
      {"backend", name_of(a.backend)},
      {"fakequant", fmt::format("{}.{}.{}", FQ_VERSION_MAJOR, FQ_VERSION_MINOR, FQ_VERSION_PATCH)}};
  if (a.llama_cpp()) p.environment["llama_cpp_dir"] = a.llama_cpp_dir;
  p.ppl.eval.threads = a.threads;
  p.ppl.eval.kernels = kernels;
  return p;
}

void record_sha256(prepared& p, run_log& log) {
  if (!p.sha256.valid() || p.environment.contains("original_sha256")) return;
  const std::string digest = p.sha256.get();
  p.environment["original_sha256"] = digest;
  fq::atomic_file out(p.original.string() + ".sha256");  // `sha256sum -c` reads it
  out.write(digest + "  " + p.original.filename().string() + "\n");
  out.commit();
  log.note(
      "  SHA-256 of the original: " + digest + " (" +
      (p.sha256_recorded ? "recorded by an earlier run; neither file has changed since, " : "") +
      "also in " + p.original.filename().string() + ".sha256)");
}

}  // namespace fqcli::pipeline

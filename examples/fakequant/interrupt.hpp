// SPDX-License-Identifier: MIT
// Interruptions and concurrent runs, which are process-wide matters and so live in the program, not
// in the library:
// - SIGINT/SIGTERM: the handler removes this process's unfinished outputs (its open files whose
//   names carry fq::atomic_file::temp_marker, found through /proc/self/fd), says that nothing
//   half-written is left and how to resume, and exits 130 (143 for SIGTERM). It uses only
//   async-signal-safe calls (readlink, unlink, write, _exit); no flag needs polling, so long loops
//   inside the library need no cancellation points.
// - SIGKILL cannot be caught: the next run removes the temporary files an earlier run left beside
//   its output, once no process has them open.
// - A workdir lock (flock on DIR/.fakequant.lock): a second run on the same folder stops with a
//   clear message; the kernel drops the lock when its holder exits or is killed, so a stale lock
//   file never blocks.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fakequant/atomic_file.hpp>
#include <fakequant/error.hpp>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

namespace fqcli {

namespace detail_interrupt {

inline std::atomic<const char*> resume_hint{
    "nothing half-written is left; rerun the same command to start again"};
inline int max_fd = 1024;
// A running child (a llama.cpp tool) and its scratch output files, set by child_scope.
inline std::atomic<pid_t> child{0};
inline char child_files[2][1024] = {};

inline std::size_t put(char* buf, std::size_t at, std::size_t cap, const char* s) noexcept {
  while (*s != '\0' && at + 1 < cap) buf[at++] = *s++;
  return at;
}

inline bool contains(const char* s, const char* w) noexcept {
  const std::size_t n = std::strlen(w);
  for (; *s != '\0'; ++s)
    if (std::strncmp(s, w, n) == 0) return true;
  return false;
}

extern "C" inline void on_interrupt(int sig) {
  // A child gets the signal too (a terminal's Ctrl-C reaches the whole process group, a
  // `kill -INT` of fakequant alone would leave it running); once it has ended, its scratch files
  // can go.
  if (const pid_t c = child.load(); c > 0) {
    ::kill(c, sig);
    int status = 0;
    while (::waitpid(c, &status, 0) < 0 && errno == EINTR) {
    }
    for (const char* f : child_files)
      if (f[0] != '\0') ::unlink(f);
  }
  // Unlink every open file of this process whose name marks it as an unfinished output.
  int removed = 0;
  char link[40], target[4096];
  for (int fd = 3; fd < max_fd; ++fd) {
    std::size_t at = put(link, 0, sizeof link, "/proc/self/fd/");
    char digits[12];
    int nd = 0;
    for (int v = fd; v > 0; v /= 10) digits[nd++] = static_cast<char>('0' + v % 10);
    while (nd > 0) link[at++] = digits[--nd];
    link[at] = '\0';
    const ssize_t n = ::readlink(link, target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (target[0] == '/' && contains(target, fq::atomic_file::temp_marker.data()) &&
        !contains(target, " (deleted)") && ::unlink(target) == 0)
      ++removed;
  }
  char msg[1024];
  std::size_t at = put(msg, 0, sizeof msg, "fakequant: interrupted by ");
  at = put(msg, at, sizeof msg, sig == SIGINT ? "SIGINT (Ctrl-C)" : "SIGTERM");
  at = put(msg, at, sizeof msg, removed > 0 ? "; the unfinished output was removed, " : "; ");
  at = put(msg, at, sizeof msg, resume_hint.load());
  at = put(msg, at, sizeof msg, "\n");
  [[maybe_unused]] const auto w = ::write(2, msg, at);
  ::_exit(128 + sig);
}

// Whether any process has the file `st` open, looked up in /proc/*/fd.
inline bool open_anywhere(const struct stat& st) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return true;  // cannot tell: keep the file
  bool found = false;
  while (const dirent* p = ::readdir(proc)) {
    if (p->d_name[0] < '1' || p->d_name[0] > '9') continue;
    const std::string fds = std::string("/proc/") + p->d_name + "/fd";
    DIR* d = ::opendir(fds.c_str());
    if (d == nullptr) continue;
    while (const dirent* f = ::readdir(d)) {
      struct stat o {};
      if (f->d_name[0] != '.' && ::stat((fds + "/" + f->d_name).c_str(), &o) == 0 &&
          o.st_dev == st.st_dev && o.st_ino == st.st_ino) {
        found = true;
        break;
      }
    }
    ::closedir(d);
    if (found) break;
  }
  ::closedir(proc);
  return found;
}

}  // namespace detail_interrupt

/// Installs the SIGINT/SIGTERM handler (once, at the start of main).
inline void install_interrupt_handler() {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
    detail_interrupt::max_fd = static_cast<int>(
        rl.rlim_cur == RLIM_INFINITY ? 65536 : std::min<rlim_t>(rl.rlim_cur, 65536));
  struct sigaction sa {};
  sa.sa_handler = detail_interrupt::on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGINT);
  sigaddset(&sa.sa_mask, SIGTERM);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

/// Runs `spawn` (which starts a child process and returns its pid, or throws) with SIGINT and
/// SIGTERM held back, and registers the child and its scratch files `out` and `err` until
/// destruction: an interruption then stops the child and removes the files. The child must be
/// started with the signal mask `original_mask()` gives (posix_spawnattr_setsigmask).
class child_scope {
 public:
  template <class Spawn>
  child_scope(Spawn&& spawn, const std::string& out, const std::string& err) {
    sigset_t hold;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &hold, &mask_);
    try {
      copy(detail_interrupt::child_files[0], out);
      copy(detail_interrupt::child_files[1], err);
      pid_ = spawn(mask_);
    } catch (...) {
      release();
      throw;
    }
    detail_interrupt::child.store(pid_);
    ::pthread_sigmask(SIG_SETMASK, &mask_, nullptr);  // a pending signal is handled here
  }
  child_scope(const child_scope&) = delete;
  child_scope& operator=(const child_scope&) = delete;
  ~child_scope() { release(); }
  pid_t pid() const noexcept { return pid_; }

 private:
  static void copy(char* to, const std::string& from) noexcept {
    const std::size_t n = std::min(from.size(), sizeof detail_interrupt::child_files[0] - 1);
    std::memcpy(to, from.data(), n);
    to[n] = '\0';
  }
  void release() noexcept {
    sigset_t hold, old;
    sigemptyset(&hold);
    sigaddset(&hold, SIGINT);
    sigaddset(&hold, SIGTERM);
    ::pthread_sigmask(SIG_BLOCK, &hold, &old);
    detail_interrupt::child.store(0);
    detail_interrupt::child_files[0][0] = detail_interrupt::child_files[1][0] = '\0';
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  sigset_t mask_{};
  pid_t pid_ = 0;
};

/// What the interrupt message tells the user to do (a string that lives as long as the program).
inline void set_resume_hint(const char* hint) { detail_interrupt::resume_hint.store(hint); }

/// Removes temporary files that interrupted runs left in `dir` (all of them, or only those of the
/// output named `target_name`), unless a process still has them open. Returns how many.
inline std::size_t clean_stale_temps(const std::filesystem::path& dir,
                                     const std::string& target_name = "") {
  const std::string marker(fq::atomic_file::temp_marker);
  const std::string prefix = target_name.empty() ? "." : "." + target_name + marker;
  std::size_t removed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir.empty() ? "." : dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.find(marker) == std::string::npos) continue;
    struct stat st {};
    if (::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    if (detail_interrupt::open_anywhere(st)) continue;  // another run is writing it
    if (::unlink(e.path().c_str()) == 0) {
      ++removed;
      fmt::print(stderr, "fakequant: removed {}, left by an interrupted run\n", e.path().string());
    }
  }
  return removed;
}

/// Leftovers of earlier interrupted writes of `out`.
inline void clean_stale_temps_of(const std::filesystem::path& out) {
  clean_stale_temps(out.parent_path(), out.filename().string());
}

/// An exclusive lock on a work folder (created if needed), held until destruction or exit.
class workdir_lock {
 public:
  explicit workdir_lock(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      throw fq::error(
          fq::errc::io_error, dir.string(),
          "cannot create the work folder: " + ec.message() + "; choose another --workdir");
    const auto path = dir / ".fakequant.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw fq::error(fq::errc::io_error, path.string(),
                      std::string("cannot create the lock file: ") + std::strerror(errno) +
                          "; choose a writable --workdir");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      char buf[32] = {};
      [[maybe_unused]] const auto n = ::pread(fd_, buf, sizeof buf - 1, 0);
      const std::string holder = buf[0] != '\0' ? std::string(" (pid ") + buf + ")" : "";
      ::close(fd_);
      fd_ = -1;
      throw fq::error(fq::errc::invalid_argument, dir.string(),
                      "another fakequant run" + holder +
                          " is using this work folder; wait for it to finish or choose another "
                          "--workdir");
    }
    const std::string pid = std::to_string(::getpid());
    if (::ftruncate(fd_, 0) == 0) {
      [[maybe_unused]] const auto n = ::pwrite(fd_, pid.data(), pid.size(), 0);
    }
  }
  workdir_lock(const workdir_lock&) = delete;
  workdir_lock& operator=(const workdir_lock&) = delete;
  ~workdir_lock() {
    // The file stays: removing it would let a third run lock a new file while a second still
    // waits on the old one.
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

/// The start of a test1 or sweep run: the work folder locked for the whole run, temporary files of
/// killed runs removed from data/ and results/, and Ctrl-C's message saying how to resume.
[[nodiscard]] inline std::unique_ptr<workdir_lock> lock_workdir(const std::filesystem::path& dir) {
  auto lock = std::make_unique<workdir_lock>(dir);
  clean_stale_temps(dir / "data");
  std::error_code ec;
  for (std::filesystem::recursive_directory_iterator it(dir / "results", ec), end; !ec && it != end;
       it.increment(ec))
    if (it->is_directory(ec)) clean_stale_temps(it->path());
  static std::string hint;
  hint = "nothing half-written is left; rerun the same command to resume (the verified backup in " +
         (dir / "data").string() + " is reused)";
  set_resume_hint(hint.c_str());
  return lock;
}

}  // namespace fqcli

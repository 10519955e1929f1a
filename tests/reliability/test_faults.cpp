// SPDX-License-Identifier: MIT
// Fault injection on the commands that write (copy, quantize, synth, test1): the disk fills
// during the write (RLIMIT_FSIZE in the child, SIGXFSZ ignored so write() fails with EFBIG), the
// process dies mid-write (SIGXFSZ's default action at the limit, and SIGKILL) or is interrupted
// (SIGINT, SIGTERM). Afterwards the input is byte-identical, nothing exists under the final name,
// the temporary file is gone (SIGINT: removed by the handler; after a kill: by the next run), and
// the next run succeeds.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fakequant/gguf.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;
using fq_test::read_bytes;

struct child_result {
  int status = -1;  // exit status, or -1 when killed by a signal
  int signal = 0;
  std::string err;
};

struct spawn_options {
  rlim_t fsize = RLIM_INFINITY;  // RLIMIT_FSIZE of the child
  bool ignore_sigxfsz = true;    // write() then fails with EFBIG instead of the signal killing
};

class child {
 public:
  child(const std::vector<std::string>& args, const fs::path& scratch, spawn_options o = {})
      : err_path_(scratch / ("stderr-" + std::to_string(counter()++))) {
    std::vector<std::string> argv{FQ_PROGRAM};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int out = ::open("/dev/null", O_WRONLY);
      const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(out, 1);
      ::dup2(err, 2);
      rlimit rl{o.fsize, o.fsize};
      ::setrlimit(RLIMIT_FSIZE, &rl);
      ::signal(SIGXFSZ, o.ignore_sigxfsz ? SIG_IGN : SIG_DFL);  // SIG_IGN survives exec
      std::vector<char*> cargs;
      for (auto& a : argv) cargs.push_back(a.data());
      cargs.push_back(nullptr);
      ::execv(cargs[0], cargs.data());
      ::_exit(127);
    }
  }
  ~child() {
    if (pid_ > 0 && !waited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;

  pid_t pid() const { return pid_; }
  bool running() {
    if (waited_) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      waited_ = true;
      raw_ = st;
    }
    return !waited_;
  }
  child_result wait() {
    if (!waited_) {
      ::waitpid(pid_, &raw_, 0);
      waited_ = true;
    }
    child_result r;
    if (WIFEXITED(raw_)) r.status = WEXITSTATUS(raw_);
    if (WIFSIGNALED(raw_)) r.signal = WTERMSIG(raw_);
    const auto e = read_bytes(err_path_);
    r.err.assign(e.begin(), e.end());
    return r;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  fs::path err_path_;
  pid_t pid_ = -1;
  int raw_ = 0;
  bool waited_ = false;
};

child_result run(const std::vector<std::string>& args, const fs::path& scratch,
                 spawn_options o = {}) {
  child c(args, scratch, o);
  return c.wait();
}

std::vector<fs::path> temps_in(const fs::path& dir) {
  std::vector<fs::path> t;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().filename().string().find(".fqtmp-") != std::string::npos)
      t.push_back(it->path());
  return t;
}

// Waits until the child has a temporary file in `dir` (it is writing), then sends `sig`.
// Returns false when the child finished first.
bool signal_mid_write(child& c, const fs::path& dir, int sig) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (!temps_in(dir).empty()) {
      ::kill(c.pid(), sig);
      return true;
    }
    if (!c.running()) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return false;
}

// A valid GGUF file of about `mib` MiB of non-zero F32 data (zeros would be written as holes,
// which take no time): large enough that a copy of it is caught mid-write.
fs::path big_model(const fs::path& dir, std::size_t mib) {
  namespace gg = fq::gguf;
  static std::vector<float> data;
  data.resize(mib << 18);
  std::uint32_t x = 12345;
  for (auto& v : data) {
    x = x * 1664525u + 1013904223u;
    v = 1.0f + static_cast<float>(x >> 8) * 0x1p-24f;
  }
  gg::builder b;
  b.set("general.architecture", gg::value::of("llama"));
  b.add_tensor("big.weight", gg::ggml_type::f32, {1024, data.size() / 1024},
               gg::tensor_source::bytes(std::as_bytes(std::span(data))));
  const auto p = dir / "big.gguf";
  b.write(p);
  return p;
}

struct writer_case {
  const char* name;
  std::vector<std::string> args;  // IN and OUT stand for the paths
};

std::vector<std::string> with_paths(std::vector<std::string> args, const fs::path& in,
                                    const fs::path& out) {
  for (auto& a : args) {
    if (a == "IN") a = in.string();
    if (a == "OUT") a = out.string();
  }
  return args;
}

const std::vector<writer_case>& writers() {
  static const std::vector<writer_case> w = {
      {"copy", {"copy", "IN", "OUT"}},
      {"quantize", {"quantize", "IN", "OUT", "--tensors", "*.weight", "--format", "bf16"}},
      // synth's input is its vocabulary source; the tinyllama preset writes 2.2 GB, so a run is
      // always caught mid-write (and killed after a few MB).
      {"synth", {"synth", "--preset", "tinyllama-1.1b", "--vocab", "IN", "OUT"}},
  };
  return w;
}

// The input of a writer: the big model, or for synth (whose input is a vocabulary) a tiny model.
fs::path input_of(const writer_case& w, const fs::path& big) {
  if (std::string(w.name) != "synth") return big;
  const auto vocab = big.parent_path() / "vocab.gguf";
  if (!fs::exists(vocab))
    REQUIRE(run({"synth", "--preset", "tiny", vocab.string()}, big.parent_path()).status == 0);
  return vocab;
}

// The run after a fault: succeeds and leaves no temporary file (the small tiny preset for synth).
void next_run_succeeds(const writer_case& w, const fs::path& in, const fs::path& out,
                       const fs::path& scratch) {
  auto args = with_paths(w.args, in, out);
  if (std::string(w.name) == "synth") args = {"synth", "--preset", "tiny", out.string()};
  const auto r = run(args, scratch);
  CAPTURE(r.err);
  CHECK(r.status == 0);
  CHECK(temps_in(out.parent_path()).empty());
  CHECK(run({"inspect", out.string()}, scratch).status == 0);
}

}  // namespace

TEST_CASE("faults - disk full during the write of copy and quantize and synth") {
  fq_test::temp_dir dir;
  const auto big = big_model(dir.path(), 8);
  for (const auto& w : writers()) {
    CAPTURE(w.name);
    const auto in = input_of(w, big);
    const auto before = read_bytes(in);
    fs::create_directories(dir / "out");
    const auto out = dir / "out" / "result.gguf";
    const auto r = run(with_paths(w.args, in, out), dir.path(), {.fsize = 1 << 20});
    CAPTURE(r.err);
    CHECK(r.status == 1);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("File too large") != std::string::npos);
    CHECK(r.err.find("free disk space") != std::string::npos);
    CHECK(!fs::exists(out));
    CHECK(temps_in(dir / "out").empty());
    CHECK(read_bytes(in) == before);
    next_run_succeeds(w, in, out, dir.path());
    fs::remove_all(dir / "out");
  }
}

TEST_CASE("faults - killed mid-write by SIGXFSZ or SIGKILL then the next run cleans up") {
  fq_test::temp_dir dir;
  const auto big = big_model(dir.path(), 32);
  for (const auto& w : writers()) {
    const auto in = input_of(w, big);
    const auto before = read_bytes(in);
    for (const int sig : {SIGXFSZ, SIGKILL}) {
      CAPTURE(w.name);
      CAPTURE(sig);
      fs::create_directories(dir / "out");
      const auto out = dir / "out" / "result.gguf";
      child_result r;
      if (sig == SIGXFSZ) {  // deterministic: dies at the first write past 1 MiB
        r = run(with_paths(w.args, in, out), dir.path(),
                {.fsize = 1 << 20, .ignore_sigxfsz = false});
      } else {
        child c(with_paths(w.args, in, out), dir.path());
        REQUIRE(signal_mid_write(c, dir / "out", SIGKILL));
        r = c.wait();
      }
      CHECK(r.signal == sig);
      CHECK(!fs::exists(out));
      CHECK(read_bytes(in) == before);
      // The kill left the temporary file; the next run removes it, saying so, and succeeds.
      CHECK(temps_in(dir / "out").size() == 1);
      const auto again = run(with_paths(w.args, in, out), dir.path(), {.fsize = 1 << 10});
      CHECK(again.err.find("left by an interrupted run") != std::string::npos);
      CHECK(temps_in(dir / "out").empty());
      next_run_succeeds(w, in, out, dir.path());
      fs::remove_all(dir / "out");
    }
  }
}

TEST_CASE("faults - SIGINT and SIGTERM mid-write remove the unfinished output") {
  fq_test::temp_dir dir;
  const auto big = big_model(dir.path(), 32);
  for (const auto& w : writers()) {
    const auto in = input_of(w, big);
    const auto before = read_bytes(in);
    for (const int sig : {SIGINT, SIGTERM}) {
      CAPTURE(w.name);
      CAPTURE(sig);
      fs::create_directories(dir / "out");
      const auto out = dir / "out" / "result.gguf";
      child c(with_paths(w.args, in, out), dir.path());
      REQUIRE(signal_mid_write(c, dir / "out", sig));
      const auto r = c.wait();
      CAPTURE(r.err);
      CHECK(r.status == 128 + sig);
      CHECK(r.err.find("fakequant: interrupted by") != std::string::npos);
      CHECK(r.err.find("the unfinished output was removed") != std::string::npos);
      CHECK(r.err.find("rerun the same command") != std::string::npos);
      CHECK(!fs::exists(out));
      CHECK(temps_in(dir / "out").empty());  // removed by the handler, not by a later run
      CHECK(read_bytes(in) == before);
      next_run_succeeds(w, in, out, dir.path());
      fs::remove_all(dir / "out");
    }
  }
}

TEST_CASE("faults - test1 interrupted or killed or out of disk resumes from its verified backup") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  const auto text = fq_test::require_shared("testdata/text/wiki.test.small.raw");
  if (model.empty() || text.empty()) return;
  fq_test::temp_dir dir;
  const auto wd = dir / "wd";
  const auto before = read_bytes(model);
  const std::vector<std::string> args{
      "test1",      "--model", model.string(), "--text", text.string(), "--workdir", wd.string(),
      "--ctx-size", "64",      "--chunks",     "1"};
  const auto original = wd / "data" / "original_model.gguf";
  const auto fake = wd / "data" / "fake_quant_layer0.gguf";
  const auto summary = wd / "results" / "layer0" / "test1_summary.json";

  // The disk fills during the backup.
  auto r = run(args, dir.path(), {.fsize = 4 << 20});
  CAPTURE(r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("File too large; free disk space") != std::string::npos);
  CHECK(!fs::exists(original));
  CHECK(temps_in(wd).empty());

  // Killed during the backup: the next run removes the leftover and completes.
  {
    child c(args, dir.path());
    REQUIRE(signal_mid_write(c, wd / "data", SIGKILL));
    CHECK(c.wait().signal == SIGKILL);
  }
  CHECK(!fs::exists(original));
  CHECK(temps_in(wd).size() == 1);
  r = run(args, dir.path());
  CHECK(r.status == 0);
  CHECK(r.err.find("left by an interrupted run") != std::string::npos);
  CHECK(temps_in(wd).empty());
  CHECK(fs::exists(summary));

  // Ctrl-C while the fake-quantized model is written: the message says where to resume, and the
  // rerun reuses the verified backup.
  fs::remove(fake);
  fs::remove(summary);
  {
    child c(args, dir.path());
    // The backup is reused (no temporary in data/ until the fake-quantized file is written).
    REQUIRE(signal_mid_write(c, wd / "data", SIGINT));
    const auto ri = c.wait();
    CAPTURE(ri.err);
    CHECK(ri.status == 130);
    CHECK(ri.err.find("rerun the same command to resume") != std::string::npos);
    CHECK(ri.err.find("verified backup") != std::string::npos);
  }
  CHECK(!fs::exists(fake));
  CHECK(temps_in(wd).empty());
  r = run(args, dir.path());
  CHECK(r.status == 0);
  CHECK(fs::exists(fake));
  CHECK(fs::exists(summary));
  std::ifstream log(wd / "results" / "layer0" / "run.log");
  const std::string log_text((std::istreambuf_iterator<char>(log)),
                             std::istreambuf_iterator<char>());
  CHECK(log_text.find("reused the verified backup") != std::string::npos);
  CHECK(read_bytes(model) == before);
}

TEST_CASE("concurrency - a second test1 on the same work folder stops with a clear message") {
  const auto model = fq_test::require_shared("testdata/models/tl-mini-f32.gguf");
  const auto text = fq_test::require_shared("testdata/text/wiki.test.small.raw");
  if (model.empty() || text.empty()) return;
  fq_test::temp_dir dir;
  const auto wd = dir / "wd";
  const std::vector<std::string> args{
      "test1",      "--model", model.string(), "--text", text.string(), "--workdir", wd.string(),
      "--ctx-size", "64",      "--chunks",     "1"};
  {
    child first(args, dir.path());
    // Once the first run writes its backup it holds the lock.
    REQUIRE(signal_mid_write(first, wd / "data", SIGSTOP));
    const auto second = run(args, dir.path());
    CAPTURE(second.err);
    CHECK(second.status == 1);
    CHECK(std::count(second.err.begin(), second.err.end(), '\n') == 1);
    CHECK(second.err.find("another fakequant run (pid " + std::to_string(first.pid()) + ")") !=
          std::string::npos);
    CHECK(second.err.find("choose another --workdir") != std::string::npos);
    // The first run goes on undisturbed and completes.
    ::kill(first.pid(), SIGCONT);
    const auto r1 = first.wait();
    CAPTURE(r1.err);
    CHECK(r1.status == 0);
  }
  CHECK(fs::exists(wd / "results" / "layer0" / "test1_summary.json"));
  CHECK(temps_in(wd).empty());
  // A lock left by a killed run does not block: the kernel released it.
  {
    child c(args, dir.path());
    REQUIRE(signal_mid_write(c, wd / "data", SIGKILL));
    c.wait();
  }
  CHECK(fs::exists(wd / ".fakequant.lock"));
  const auto after = run(args, dir.path());
  CAPTURE(after.err);
  CHECK(after.status == 0);
}

TEST_CASE("concurrency - test1 and sweep refuse a work folder whose lock is held") {
  fq_test::temp_dir dir;
  const auto wd = dir / "wd";
  fs::create_directories(wd);
  const int fd = ::open((wd / ".fakequant.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);
  for (const std::string c : {"test1", "sweep"}) {
    CAPTURE(c);
    const auto r = run({c, "--demo", "--workdir", wd.string()}, dir.path());
    CAPTURE(r.err);
    CHECK(r.status == 1);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(r.err.find("another fakequant run is using this work folder") != std::string::npos);
    CHECK(!fs::exists(wd / "data"));  // nothing touched
  }
  ::close(fd);
}

TEST_CASE("faults - SIGINT to fakequant alone also stops a running llama.cpp tool") {
  // A `kill -INT` of fakequant (not of its process group, as a terminal's Ctrl-C would be) must
  // not leave the tool running, nor its scratch output files in TMPDIR.
  fq_test::temp_dir dir;
  const auto tools = dir / "tools", tmp = dir / "tmp", pid_file = dir / "tool.pid";
  fs::create_directories(tools);
  fs::create_directories(tmp);
  for (const char* name : {"llama-completion", "llama-perplexity"}) {
    std::ofstream(tools / name) << "#!/bin/sh\necho $$ > '" << pid_file.string() << ".tmp'\nmv '"
                                << pid_file.string() << ".tmp' '" << pid_file.string()
                                << "'\nexec sleep 120\n";
    fs::permissions(tools / name, fs::perms::owner_all, fs::perm_options::add);
  }
  const char* old_tmp = std::getenv("TMPDIR");
  const std::string saved = old_tmp ? old_tmp : "";
  ::setenv("TMPDIR", tmp.c_str(), 1);
  child c({"test1", "--demo", "--workdir", (dir / "wd").string(), "--backend", "llama.cpp",
           "--llama-cpp-dir", tools.string()},
          dir.path());
  if (old_tmp)
    ::setenv("TMPDIR", saved.c_str(), 1);
  else
    ::unsetenv("TMPDIR");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(pid_file) && c.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(fs::exists(pid_file));
  pid_t tool = 0;
  std::ifstream(pid_file) >> tool;
  REQUIRE(tool > 0);
  CHECK(::kill(tool, 0) == 0);  // the tool runs
  ::kill(c.pid(), SIGINT);
  const auto r = c.wait();
  CAPTURE(r.err);
  CHECK(r.status == 130);
  CHECK(r.err.find("fakequant: interrupted by SIGINT") != std::string::npos);
  // Stopped and reaped by fakequant's handler: no such process any more.
  const bool gone = ::kill(tool, 0) == -1 && errno == ESRCH;
  CHECK(gone);
  if (!gone) ::kill(tool, SIGKILL);  // leave no sleeping tool behind a failure
  std::size_t scratch = 0;
  for (const auto& e : fs::directory_iterator(tmp))
    scratch += e.path().filename().string().rfind("fakequant-", 0) == 0;
  CHECK(scratch == 0);
}

// SPDX-License-Identifier: Apache-2.0
// The policy in force, and reloading it when its files change.
//
// Why stat(2) polling and not inotify. The check runs on the path that secures a new socket, at
// most once per interval (1 s by default), and stats the policy file and every file it names: a
// handful of system calls a second, only while the program makes connections, and one atomic
// load plus a clock read otherwise. inotify would need a descriptor of ours in the application's
// descriptor table (programs that close every descriptor when they daemonize would break it), a
// thread or a poll of it on the same path anyway, watches on each containing directory to see
// files replaced by rename(2) and on every level of the symbolic links that Kubernetes-style
// secret volumes swap, and it is silent on NFS and other network filesystems and limited by
// fs.inotify.max_user_instances. stat follows symbolic links, so a swapped link, a renamed-over
// file and an in-place write all change the stamp we compare: device, inode, size, mtime, ctime
// (ctime also catches chmod, e.g. a key fixed to 0600).
//
// Half-written files. A stamp that differs from the one in force is acted on only when the next
// check, one interval later, sees the same stamp again: the files have stopped changing. The
// whole snapshot is then built (the loader checks that each key matches its certificate, and
// every TLS context is built from the files), so a certificate written before its key, or a
// truncated PEM or TOML file, fails the build and the last good snapshot stays in force; the next
// check tries again. If a file changed while the build read it, the build is discarded and the
// change waits to settle. Once built, a snapshot never reads its files again.

#include "core/policy_state.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <shared_mutex>

#include "base/text.hpp"
#include "ssx/ssx.h"

namespace ssx::core {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::int64_t kDefaultCheckIntervalMs = 1000;
constexpr std::int64_t kMaxCheckIntervalMs = 3600000;
// The same failure is logged again after this long, so a problem left unfixed is not forgotten;
// failure lines are at least kLogSpacing apart whatever they say.
constexpr auto kRepeatLogAfter = std::chrono::seconds(60);
constexpr auto kLogSpacing = std::chrono::seconds(1);

std::int64_t to_ns(const timespec &t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// realtime_coarse_ns reads the clock the kernel stamps file times with.
std::int64_t realtime_coarse_ns() {
  timespec t{};
  ::clock_gettime(CLOCK_REALTIME_COARSE, &t);
  return to_ns(t);
}

// FileStamp is what stat(2) says about one file. The default value, |error| = kUnsettled, equals
// no real stamp: recorded for a file, it makes the next check load again.
constexpr int kUnsettled = -1;
struct FileStamp {
  int error = kUnsettled;  // 0, or stat's errno (a missing file is a state too)
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const FileStamp &) const = default;
};

FileStamp stamp(const std::string &path) {
  FileStamp s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    s.error = errno;
    return s;
  }
  s.error = 0;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtime_ns = to_ns(st.st_mtim);
  s.ctime_ns = to_ns(st.st_ctim);
  return s;
}

std::vector<FileStamp> stamp_all(const std::vector<std::string> &paths) {
  std::vector<FileStamp> out;
  out.reserve(paths.size());
  for (const auto &path : paths) out.push_back(stamp(path));
  return out;
}

std::int64_t interval_from_environment() {
  const char *env = ::secure_getenv("SSX_POLICY_CHECK_INTERVAL_MS");
  if (env == nullptr || *env == '\0') return kDefaultCheckIntervalMs;
  char *end = nullptr;
  errno = 0;
  const long long value = std::strtoll(env, &end, 10);
  if (errno != 0 || *end != '\0' || value < 0 || value > kMaxCheckIntervalMs) {
    return kDefaultCheckIntervalMs;
  }
  return value;
}

struct State {
  // The policy in force; readers take |mu| shared.
  std::shared_mutex mu;
  std::shared_ptr<PolicySnapshot> snapshot;  // null while no valid policy has been loaded
  Failure error;                             // why |snapshot| is null
  std::atomic<bool> loaded{false};
  std::atomic<std::uint64_t> generation{0};
  std::atomic<std::int64_t> interval_ms{interval_from_environment()};
  std::atomic<std::int64_t> next_check_ns{0};  // steady clock

  // Loading. |reload_mu| serialises every load and guards everything below.
  std::mutex reload_mu;
  std::string path;          // the policy file loads read
  bool path_chosen = false;  // by $SSX_POLICY or install_policy_file: a missing file is an error
  bool from_file = false;    // the snapshot in force came from a file, not the built-in defaults
  std::vector<std::string> watched;  // the policy file, then every file it names
  std::vector<FileStamp> installed;  // |watched| as the snapshot in force was built from them
  std::vector<FileStamp> pending;    // |watched| at the last check, when they differed
  std::string last_failure;
  std::string logged;  // the failure last written to stderr
  Clock::time_point logged_at{};
  bool failure_logged = false;  // a failure was logged and no load has succeeded since
};

State &state() {
  static State s;
  return s;
}

// Candidate is a snapshot built and not yet in force, with the files it was built from.
struct Candidate {
  std::shared_ptr<PolicySnapshot> snapshot;
  bool from_file = false;
  std::vector<std::string> watched;
};

// load_candidate loads |path| and builds its snapshot. With |builtin_if_missing| a missing file
// means the built-in defaults.
Result<Candidate> load_candidate(const std::string &path, bool builtin_if_missing) {
  Candidate c;
  auto loaded = policy::load_policy_file(path);
  Result<std::shared_ptr<PolicySnapshot>> built = fail(EINVAL, "");
  if (!loaded && loaded.error().code == ENOENT && builtin_if_missing) {
    built = PolicySnapshot::build(policy::builtin_policy());
  } else if (!loaded) {
    return loaded.error();
  } else {
    built = PolicySnapshot::build(std::move(*loaded));
    c.from_file = true;
  }
  if (!built) return built.error();
  c.snapshot = std::move(*built);
  c.watched.push_back(path);
  for (auto &file : c.snapshot->files()) {
    if (file != path) c.watched.push_back(std::move(file));
  }
  return c;
}

bool builtin_if_missing(const State &s) {
  return !s.path_chosen && !s.from_file;
}

// stamps_after stamps |c|'s files once it is built. |before| are the stamps of |s.watched| taken
// before the build began at |began| (realtime). A file that was watched and whose stamp changed
// since |before|, or that was not watched and was written at or after |began|, may have been
// read half-way through a change: it gets an unsettled stamp, so that the next check loads again
// once it has settled. |changed| says whether a watched file changed.
std::vector<FileStamp> stamps_after(const State &s, const std::vector<FileStamp> &before,
                                    const Candidate &c, std::int64_t began, bool *changed) {
  std::vector<FileStamp> after = stamp_all(c.watched);
  *changed = false;
  for (std::size_t i = 0; i < after.size(); ++i) {
    auto it = std::find(s.watched.begin(), s.watched.end(), c.watched[i]);
    if (it != s.watched.end()) {
      if (before[static_cast<std::size_t>(it - s.watched.begin())] != after[i]) {
        *changed = true;
        after[i] = FileStamp{};
      }
    } else if (after[i].error == 0 && std::max(after[i].mtime_ns, after[i].ctime_ns) >= began) {
      after[i] = FileStamp{};
    }
  }
  return after;
}

// one_line keeps a message to one line of a log.
std::string one_line(std::string text) {
  for (char &ch : text) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = ' ';
  }
  return text;
}

// log_line writes |line| to stderr only if that cannot block: this runs on whatever thread
// secures a socket (a server's event loop), and a stderr pipe nobody reads must not stall it. A
// pipe or terminal must have room (POLLOUT) and the line go out in one write of at most
// PIPE_BUF bytes; otherwise the line is dropped.
void log_line(const std::string &line) {
  std::string text = line.substr(0, PIPE_BUF - 1) + "\n";
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return;
  if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
    pollfd p{STDERR_FILENO, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || (p.revents & POLLOUT) == 0) return;
  }
  if (S_ISSOCK(st.st_mode)) {
    (void)::send(STDERR_FILENO, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return;
  }
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

void install(State &s, Candidate c, std::vector<FileStamp> stamps) {
  {
    std::unique_lock lock(s.mu);
    s.snapshot.swap(c.snapshot);  // the old one is released after the lock, outside readers' way
    s.error = Failure{};
  }
  c.snapshot.reset();
  s.from_file = c.from_file;
  s.watched = std::move(c.watched);
  s.installed = std::move(stamps);
  s.pending.clear();
  s.last_failure.clear();
  s.generation.fetch_add(1, std::memory_order_relaxed);
  if (s.failure_logged) {
    log_line("ssx: policy " + base::quote(s.path) +
             " loaded; the problem reported before is resolved");
    s.failure_logged = false;
    s.logged.clear();
  }
}

// note_failure records a failed load. With no snapshot in force, sockets keep failing closed
// with the new reason. |log| writes it to stderr, rate-limited.
void note_failure(State &s, const Failure &failure, bool log) {
  s.last_failure = failure.message;
  bool in_force = false;
  {
    std::unique_lock lock(s.mu);
    in_force = s.snapshot != nullptr;
    if (!in_force) {
      s.error =
          fail(EACCES, SSX_REASON_POLICY_INVALID,
               "policy " + s.path + " is unusable, refusing to secure sockets: " + failure.message);
    }
  }
  if (!log) return;
  const auto now = Clock::now();
  if (s.logged_at != Clock::time_point{} && now - s.logged_at < kLogSpacing) return;
  if (failure.message == s.logged && now - s.logged_at < kRepeatLogAfter) return;
  s.logged = failure.message;
  s.logged_at = now;
  s.failure_logged = true;
  log_line(std::string("ssx: ") +
           (in_force ? "cannot reload policy; new connections keep the policy in force: "
                     : "cannot load policy; sockets that need it are refused: ") +
           one_line(failure.message));
}

// load_now loads |path| at once (an explicit request: no waiting for files to settle) and puts
// it in force. Needs |reload_mu|.
Result<void> load_now(State &s, const std::string &path, bool path_chosen) {
  const std::vector<FileStamp> before = stamp_all(s.watched);
  const std::int64_t began = realtime_coarse_ns();
  // The built-in defaults stand in for a missing file only where they would at startup: the
  // default path, and no policy from that file in force (its disappearance is an error).
  auto candidate = load_candidate(path, !path_chosen && (path != s.path || !s.from_file));
  if (!candidate) return candidate.error();
  bool changed = false;
  auto stamps = stamps_after(s, before, *candidate, began, &changed);
  s.path = path;
  s.path_chosen = path_chosen;
  install(s, std::move(*candidate), std::move(stamps));
  s.next_check_ns.store(steady_ns() + s.interval_ms.load() * 1000000, std::memory_order_relaxed);
  return {};
}

void ensure_loaded(State &s) {
  if (s.loaded.load(std::memory_order_acquire)) return;
  std::lock_guard lock(s.reload_mu);
  if (s.loaded.load(std::memory_order_relaxed)) return;
  const char *env = ::secure_getenv("SSX_POLICY");
  const bool chosen = env != nullptr && *env != '\0';
  const std::string path = policy::policy_path();
  if (auto r = load_now(s, path, chosen); !r) {
    s.path = path;
    s.path_chosen = chosen;
    s.watched = {path};
    s.installed = {FileStamp{}};  // retried at the next check
    note_failure(s, r.error(), false);
  }
  s.loaded.store(true, std::memory_order_release);
}

// check_for_changes is the automatic check. Needs |reload_mu|.
void check_for_changes(State &s) {
  std::vector<FileStamp> now = stamp_all(s.watched);
  if (now == s.installed) {
    s.pending.clear();
    return;
  }
  if (now != s.pending) {
    s.pending = std::move(now);  // changed since the last check: wait until it settles
    return;
  }
  const std::int64_t began = realtime_coarse_ns();
  auto candidate = load_candidate(s.path, builtin_if_missing(s));
  if (!candidate) {
    note_failure(s, candidate.error(), true);
    return;  // |pending| stays: the next check tries again
  }
  bool changed = false;
  auto stamps = stamps_after(s, now, *candidate, began, &changed);
  if (changed) return;  // read while it changed: the next check sees the change and waits
  install(s, std::move(*candidate), std::move(stamps));
}

void maybe_check(State &s) {
  const std::int64_t interval = s.interval_ms.load(std::memory_order_relaxed);
  if (interval <= 0) return;
  if (steady_ns() < s.next_check_ns.load(std::memory_order_relaxed)) return;
  std::unique_lock lock(s.reload_mu, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is loading: go on with the policy in force
  if (steady_ns() < s.next_check_ns.load(std::memory_order_relaxed)) return;
  check_for_changes(s);
  s.next_check_ns.store(steady_ns() + interval * 1000000, std::memory_order_relaxed);
}

}  // namespace

Result<std::shared_ptr<PolicySnapshot>> PolicySnapshot::build(policy::Policy policy) {
  auto snapshot = std::make_shared<PolicySnapshot>(std::move(policy));
  const policy::Policy &p = snapshot->policy();
  auto prepare = [&](const policy::Settings &s, const std::optional<policy::Direction> &direction,
                     const std::string &table) -> Result<void> {
    // protocol "dtls" too: a DTLS context is derived from the TLS context of the same settings
    // (its credentials and trust store), so that one must hold the files as they are now.
    if (s.deny || s.protocol == policy::Protocol::local) return {};
    // An agent key's contexts ask the agent: built on first use, so that an agent that is down
    // when the policy loads fails those handshakes (and is asked again), not the whole policy.
    if (!policy::agent_key_name(s).empty()) return {};
    // Only the system store to read: nothing that rotates, and ~100 ms per context to load it,
    // so these are built on first use.
    if (s.certificate.empty() && s.trust_bundle == "system" && s.crl.empty()) return {};
    for (tls::Role role : {tls::Role::client, tls::Role::server}) {
      if (role == tls::Role::client && direction == policy::Direction::inbound) continue;
      if (role == tls::Role::server &&
          (s.certificate.empty() || direction == policy::Direction::outbound)) {
        continue;
      }
      auto context = snapshot->tls_context(s, role);
      if (!context) {
        return fail(context.error().code, context.error().reason,
                    p.source + ": " + table + ": " + context.error().message);
      }
    }
    return {};
  };
  if (auto r = prepare(p.defaults, std::nullopt, "[defaults]"); !r) return r.error();
  for (const auto &rule : p.rules) {
    if (auto r = prepare(rule.settings, rule.match.direction, "rule " + base::quote(rule.name));
        !r) {
      return r.error();
    }
  }
  return snapshot;
}

Result<std::shared_ptr<tls::Context>> PolicySnapshot::tls_context(const policy::Settings &settings,
                                                                  tls::Role role) {
  std::lock_guard lock(contexts_mu_);
  auto key = std::make_pair(&settings, role);
  auto it = contexts_.find(key);
  // A context whose agent key's certificate was rotated is rebuilt, to present the new one; the
  // agent still signs for the old certificate meanwhile, so if the rebuild fails the old context
  // goes on serving.
  if (it != contexts_.end() && !it->second->stale()) return it->second;
  Result<std::shared_ptr<tls::Context>> built = fail(EIO, "");
  if (!policy::agent_key_name(settings).empty()) {
    tls::AgentUse use;
    use.endpoint.socket_path = policy_.agent.socket;
    use.endpoint.timeout = std::chrono::milliseconds(policy_.agent.timeout_ms);
    use.endpoint.trusted_uid = policy_.owner;
    use.rule = "defaults";
    for (const auto &rule : policy_.rules) {
      if (&rule.settings == &settings) use.rule = rule.name;
    }
    built = tls::Context::build(settings, role, &use);
  } else {
    built = tls::Context::build(settings, role);
  }
  if (!built) {
    if (it != contexts_.end()) return it->second;
    return built.error();
  }
  contexts_[key] = *built;
  return *built;
}

Result<std::shared_ptr<tls::Context>> PolicySnapshot::dtls_context(const policy::Settings &settings,
                                                                   tls::Role role) {
  {
    std::lock_guard lock(contexts_mu_);
    if (auto it = dtls_contexts_.find(std::make_pair(&settings, role));
        it != dtls_contexts_.end()) {
      return it->second;
    }
  }
  // Not under contexts_mu_: tls_context takes it (and may build, reading nothing new when the
  // snapshot was built with build()).
  auto stream = tls_context(settings, role);
  if (!stream) return stream.error();
  auto built = tls::Context::build_datagram(**stream, settings);
  if (!built) return built.error();
  std::lock_guard lock(contexts_mu_);
  // Another thread may have built it meanwhile: keep the first, so every socket shares one.
  return dtls_contexts_.emplace(std::make_pair(&settings, role), *built).first->second;
}

std::vector<std::string> PolicySnapshot::files() const {
  std::vector<std::string> out;
  auto add = [&out](const std::string &path) {
    if (!path.empty() && std::find(out.begin(), out.end(), path) == out.end()) {
      out.push_back(path);
    }
  };
  auto add_settings = [&](const policy::Settings &s) {
    add(s.certificate);
    if (policy::agent_key_name(s).empty()) add(s.private_key);
    if (s.trust_bundle != "system") add(s.trust_bundle);
    add(s.crl);
  };
  add_settings(policy_.defaults);
  for (const auto &rule : policy_.rules) add_settings(rule.settings);
  return out;
}

Result<std::shared_ptr<PolicySnapshot>> current_policy() {
  State &s = state();
  ensure_loaded(s);
  maybe_check(s);
  std::shared_lock lock(s.mu);
  if (s.snapshot) return s.snapshot;
  return s.error;
}

Result<void> install_policy_file(const std::string &path) {
  State &s = state();
  std::lock_guard lock(s.reload_mu);
  if (auto r = load_now(s, path, true); !r) return r;
  s.loaded.store(true, std::memory_order_release);
  return {};
}

Result<void> reload_policy() {
  State &s = state();
  ensure_loaded(s);
  std::lock_guard lock(s.reload_mu);
  auto r = load_now(s, s.path, s.path_chosen);
  if (!r) note_failure(s, r.error(), false);
  return r;
}

void set_policy_check_interval(std::chrono::milliseconds interval) {
  State &s = state();
  s.interval_ms.store(std::clamp<std::int64_t>(interval.count(), 0, kMaxCheckIntervalMs));
  s.next_check_ns.store(0);
}

PolicyStatus policy_status() {
  State &s = state();
  std::lock_guard lock(s.reload_mu);
  return PolicyStatus{s.path, s.generation.load(), s.last_failure};
}

const std::string &executable_path() {
  static const std::string kPath = [] {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
  }();
  return kPath;
}

}  // namespace ssx::core

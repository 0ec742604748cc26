// SPDX-License-Identifier: Apache-2.0
#include "tunnel.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/address.hpp"
#include "common/unix_address.hpp"
#include "core/policy_state.hpp"
#include "errno_name.hpp"
#include "listener.hpp"
#include "log.hpp"
#include "metrics.hpp"
#include "metrics_server.hpp"
#include "ossl/inspect.hpp"
#include "policy_diff.hpp"
#include "resolver.hpp"
#include "ssx/ssx.h"
#include "systemd.hpp"
#include "worker.hpp"

namespace ssx::cli::tunnel {
namespace {

// Fd closes a plain descriptor.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd &) = delete;
  Fd &operator=(const Fd &) = delete;
  int release() { return std::exchange(fd, -1); }
};

Failure errno_failure(const std::string &what) {
  int err = errno;
  return fail(err, what + ": " + std::strerror(err));
}

Result<int> open_metrics_listener(SocketAddress &address) {
  Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.fd < 0) return errno_failure("metrics: socket");
  int one = 1;
  ::setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.fd, address.get(), address.length) != 0 || ::listen(fd.fd, 16) != 0) {
    return errno_failure("cannot serve metrics on " + format_address(address.get()));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(fd.fd, reinterpret_cast<sockaddr *>(&bound), &len);
  address.storage = bound;
  address.length = len;
  return fd.release();
}

// certificates_in_force lists the certificate of [defaults] and of each rule of the policy in
// force, with its subject and notAfter (read from the file now; one that cannot be read is left
// out: the library would not have loaded it either).
std::vector<CertificateExpiry> certificates_in_force() {
  std::vector<CertificateExpiry> out;
  auto snapshot = core::current_policy();
  if (!snapshot) return out;
  const policy::Policy &p = (*snapshot)->policy();
  auto add = [&out](const std::string &table, const policy::Settings &s) {
    if (s.certificate.empty()) return;
    auto facts = ossl::inspect_certificate_file(s.certificate);
    if (!facts) return;
    out.push_back(CertificateExpiry{table, facts->subject, s.certificate, facts->not_after});
  };
  add("defaults", p.defaults);
  for (const auto &rule : p.rules) add(rule.name, rule.settings);
  return out;
}

const char *mode_name(Mode mode) {
  return mode == Mode::server ? "server" : "client";
}

}  // namespace

unsigned long raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<unsigned long>(limit.rlim_cur);
}

Result<void> run(const Options &options, PolicySource &policy) {
  return run(std::vector<Options>{options}, policy);
}

Result<void> run(const std::vector<Options> &tunnels_in, PolicySource &policy) {
  if (tunnels_in.empty()) return fail(EINVAL, "no tunnel to run");
  // Each tunnel's Shared refers to its Options: the vector never changes size from here on.
  std::vector<Options> tunnels = tunnels_in;
  // What the process has once (metrics, log, grace, resolver) comes from the first tunnel; the
  // command line and --config set it alike on every tunnel.
  Options &first = tunnels.front();
  const unsigned long open_files = raise_open_file_limit();

  // Every thread started from here on inherits this mask: only the signalfd sees the signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  (void)::signal(SIGPIPE, SIG_IGN);  // ssx and the tunnel use MSG_NOSIGNAL; this covers stderr
  Fd signal_fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (signal_fd.fd < 0) return errno_failure("signalfd");

  // Listeners first, all of them: a port (or socket path) in use stops the whole process before
  // anything is served. Socket files this process creates are removed on every way out.
  std::vector<std::vector<int>> listeners;
  std::vector<UnixSocketFile> socket_files;
  auto close_listeners = [&listeners] {
    for (auto &fds : listeners) {
      for (int l : fds) ssx_close(l);
      fds.clear();
    }
  };
  for (Options &options : tunnels) {
    auto fds = open_listeners(options, options.listen_address);
    if (!fds) {
      close_listeners();
      if (!options.name.empty()) {
        return fail(fds.error().code, "tunnel \"" + options.name + "\": " + fds.error().message);
      }
      return fds.error();
    }
    listeners.push_back(std::move(*fds));
    if (options.listen.is_unix() && options.inherited_listener < 0) {
      socket_files.emplace_back(options.listen.unix_path);
    }
  }
  std::optional<int> metrics_fd;
  if (first.metrics_address) {
    auto fd = open_metrics_listener(*first.metrics_address);
    if (!fd) {
      close_listeners();
      return fd.error();
    }
    metrics_fd = *fd;
  }

  unsigned total_workers = 0;
  for (const Options &options : tunnels) total_workers += options.workers;
  Metrics metrics(total_workers);
  metrics.set_certificates(certificates_in_force());
  Logger log(metrics.log_lines_dropped, first.log_format, first.log_level);
  std::vector<std::unique_ptr<Shared>> shareds;
  shareds.reserve(tunnels.size());
  for (const Options &options : tunnels) {
    // An aggregate (atomics inside): brace-initialised, which make_unique cannot do everywhere.
    shareds.push_back(std::unique_ptr<Shared>(new Shared{options, metrics, log}));
  }
  Resolver resolver(log, first.resolve_interval);
  for (const Options &options : tunnels) {
    if (options.to_resolved) resolver.add(options.to_resolved);
  }

  Fd epoll_fd(::epoll_create1(EPOLL_CLOEXEC));
  Fd done_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (epoll_fd.fd < 0 || done_fd.fd < 0) return errno_failure("epoll");
  static char signal_tag = 0, done_tag = 0;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &signal_tag;
  ::epoll_ctl(epoll_fd.fd, EPOLL_CTL_ADD, signal_fd.fd, &ev);
  ev.data.ptr = &done_tag;
  ::epoll_ctl(epoll_fd.fd, EPOLL_CTL_ADD, done_fd.fd, &ev);
  // /readyz turns 503 when the tunnels drain: they all start draining together.
  std::unique_ptr<MetricsServer> metrics_server;
  if (metrics_fd)
    metrics_server = std::make_unique<MetricsServer>(epoll_fd.fd, *metrics_fd, metrics,
                                                     shareds.front()->stopping);

  std::vector<std::unique_ptr<Worker>> workers;
  unsigned index = 0;
  for (size_t t = 0; t < tunnels.size(); ++t) {
    for (unsigned i = 0; i < tunnels[t].workers; ++i) {
      workers.push_back(std::make_unique<Worker>(*shareds[t], index++, listeners[t][i]));
    }
    listeners[t].clear();  // the workers own them now
  }
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  const int done_event_fd = done_fd.fd;
  for (auto &w : workers) {
    threads.emplace_back([&w, done_event_fd] {
      w->run();
      std::uint64_t one = 1;
      (void)!::write(done_event_fd, &one, sizeof one);
    });
  }
  resolver.start();

  for (const Options &options : tunnels) {
    const std::string named = options.name.empty() ? "" : ", tunnel \"" + options.name + "\"";
    std::string to = format_address(options.to_address.get());
    if (options.to_resolved) {
      std::string named_to = format_host_port(options.to.host, options.to.port);
      named_to += " (now " + to;
      named_to += "; looked up again every " + std::to_string(options.resolve_interval.count());
      named_to += " ms)";
      to = std::move(named_to);
    }
    std::printf("ssx tunnel: listening on %s (%s mode%s), forwarding to %s\n",
                format_address(options.listen_address.get()).c_str(), mode_name(options.mode),
                named.c_str(), to.c_str());
  }
  if (first.metrics_address) {
    std::printf("ssx tunnel: metrics on http://%s/metrics\n",
                format_address(first.metrics_address->get()).c_str());
  }
  std::printf("ssx tunnel: policy %s; %u %s; open files limit %lu\n", policy.describe().c_str(),
              total_workers, total_workers == 1 ? "worker" : "workers", open_files);
  for (const Options &options : tunnels) {
    // The budget is derived after the limit was raised; Worker computes the same numbers.
    const size_t budget =
        options.max_handshakes != 0 ? options.max_handshakes : derive_budget(options.workers);
    std::printf(
        "ssx tunnel: unfinished handshakes: up to %zu per worker (%s), %u per source address; "
        "idle timeout %lld s; keepalive %u s\n",
        budget, options.max_handshakes != 0 ? "--max-handshakes" : "from the open files limit",
        options.max_handshakes_per_source,
        static_cast<long long>(options.idle_timeout.count() / 1000), options.keepalive);
  }
  (void)std::fflush(stdout);
  systemd::notify_ready("listening on " + format_address(first.listen_address.get()));

  // The library also reloads the policy by itself when a file it names changes; the picture of
  // what is in force lets each reload's log line say what changed.
  PolicyPicture picture = picture_of_policy_in_force();
  std::string auto_failure = core::policy_status().last_failure;
  unsigned finished = 0;
  int stop_signals = 0;
  while (finished < workers.size()) {
    epoll_event events[16];
    int n = ::epoll_wait(epoll_fd.fd, events, 16, 1000);
    for (int i = 0; i < n; ++i) {
      void *tag = events[i].data.ptr;
      if (tag == &done_tag) {
        std::uint64_t count = 0;
        if (::read(done_fd.fd, &count, sizeof count) == sizeof count) finished += count;
      } else if (tag == &signal_tag) {
        signalfd_siginfo info{};
        while (::read(signal_fd.fd, &info, sizeof info) == sizeof info) {
          if (info.ssi_signo == SIGHUP) {
            systemd::notify_reloading();
            auto r = policy.reload();
            systemd::notify_ready(r ? "policy reloaded" : "policy reload failed; previous kept");
            if (r) {
              metrics.reloads_ok.fetch_add(1, std::memory_order_relaxed);
              metrics.set_certificates(certificates_in_force());
              PolicyPicture now = picture_of_policy_in_force();
              log.event(LogLevel::info, "policy_reloaded",
                        "policy reloaded from " + policy.describe() + " (SIGHUP); " +
                            describe_changes(picture, now) +
                            "; new connections use it, open ones keep theirs");
              picture = std::move(now);
            } else {
              metrics.reloads_failed.fetch_add(1, std::memory_order_relaxed);
              log.event(LogLevel::error, "policy_reload_failed",
                        "policy reload failed, keeping the previous policy (SIGHUP): " +
                            r.error().message);
            }
            continue;
          }
          // SIGTERM / SIGINT: the first drains, the second closes everything now.
          if (stop_signals++ == 0) {
            systemd::notify_stopping();
            for (auto &shared : shareds) {
              shared->drain_deadline = Clock::now() + first.grace;
              shared->stopping.store(true, std::memory_order_release);
            }
            log.line("stopping: no new connections; draining open ones for up to " +
                     std::to_string(first.grace.count()) + " ms");
          } else {
            for (auto &shared : shareds) shared->stop_now.store(true, std::memory_order_release);
            log.line("stopping now: closing every connection");
          }
          for (auto &w : workers) w->wake();
        }
      } else if (metrics_server) {
        metrics_server->handle(tag, events[i].events);
      }
    }
    if (metrics_server) metrics_server->expire();
    if (const auto status = core::policy_status(); status.generation != picture.generation) {
      metrics.auto_reloads.fetch_add(1, std::memory_order_relaxed);
      metrics.set_certificates(certificates_in_force());
      PolicyPicture now = picture_of_policy_in_force();
      log.event(LogLevel::info, "policy_reloaded",
                "policy reloaded automatically from " + now.source + " (a file changed); " +
                    describe_changes(picture, now) +
                    "; new connections use it, open ones keep theirs");
      picture = std::move(now);
      auto_failure.clear();
    } else if (status.last_failure != auto_failure) {
      auto_failure = status.last_failure;
      if (!auto_failure.empty()) {
        log.repeated(LogLevel::error, "auto-reload", "policy_reload_failed",
                     "automatic policy reload failed, keeping the policy in force: " + auto_failure,
                     std::chrono::seconds(60));
      }
    }
  }
  for (auto &t : threads) t.join();
  resolver.stop();
  workers.clear();
  metrics_server.reset();
  log.line("stopped");
  // The signal mask stays: a SIGTERM arriving now must not kill the process on its way out.
  return {};
}

}  // namespace ssx::cli::tunnel

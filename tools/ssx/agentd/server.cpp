// SPDX-License-Identifier: Apache-2.0
#include "agentd/server.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "agent/client.hpp"
#include "agentd/keystore.hpp"
#include "base/text.hpp"
#include "command.hpp"
#include "common/address.hpp"

namespace ssx::cli::agent_daemon {
namespace {

using Clock = std::chrono::steady_clock;

std::string utc_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  ::gmtime_r(&ts.tv_sec, &t);
  char buf[32];
  (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

void log_line(const std::string &line) {
  const std::string text = "ssx agent: " + line + "\n";
  (void)!::write(STDERR_FILENO, text.data(), text.size());
}

std::string user_name(uid_t uid) {
  passwd pw{};
  passwd *found = nullptr;
  std::array<char, 4096> buf{};
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) == 0 && found != nullptr) {
    return found->pw_name;
  }
  return std::to_string(uid);
}

std::string program_of(pid_t pid) {
  char buf[PATH_MAX];
  const std::string link = "/proc/" + std::to_string(pid) + "/exe";
  const ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<std::size_t>(n));
}

struct Stamp {
  int error = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime = 0;
  std::int64_t ctime = 0;
  bool operator==(const Stamp &) const = default;
};

std::vector<Stamp> stamps(const std::vector<std::string> &files) {
  std::vector<Stamp> out;
  for (const auto &f : files) {
    struct stat st {};
    Stamp s;
    if (::stat(f.c_str(), &st) != 0) {
      s.error = errno;
    } else {
      s = Stamp{0,
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec};
    }
    out.push_back(s);
  }
  return out;
}

struct Connection {
  int fd = -1;
  Client client;
  std::vector<std::uint8_t> in;  // the request being read: header, then body
  std::size_t want = agent::kFrameHeader;
  bool reading_body = false;
  std::vector<std::uint8_t> out;  // the response being written
  std::size_t sent = 0;
  bool close_after_write = false;
  Clock::time_point last_activity;
  Clock::time_point request_started;  // first byte of the request being read
};

struct Counters {
  std::map<std::string, std::uint64_t> signatures;  // per key
  std::map<std::string, std::uint64_t> refusals;    // per key ("-" for a malformed request)
  std::uint64_t malformed = 0;
  std::uint64_t busy = 0;
  std::uint64_t reloads = 0;
  std::uint64_t reload_failures = 0;
};

std::uint64_t total(const std::map<std::string, std::uint64_t> &m) {
  std::uint64_t n = 0;
  for (const auto &[k, v] : m) n += v;
  return n;
}

struct MetricsClient {
  std::string request;
  std::string response;
  std::size_t sent = 0;
  Clock::time_point deadline;
};

class Server {
 public:
  explicit Server(const ServerOptions &options) : options_(options) {}
  void run();

 private:
  void listen_socket();
  void accept_clients();
  void on_readable(Connection &c);
  void on_writable(Connection &c);
  void handle_request(Connection &c);
  void respond(Connection &c, std::vector<std::uint8_t> frame, bool close_after);
  void refuse(Connection &c, agent::ErrorCode code, const std::string &message, bool close_after);
  void audit(const Connection &c, std::string_view key, std::string_view rule, std::string_view op,
             std::string_view result, const std::string &reason);
  void close_connection(int fd);
  void tick();
  void reload(const char *why);
  std::string status_text() const;
  std::string metrics_text() const;
  void open_metrics();
  void accept_metrics();
  void serve_metrics(int fd);

  ServerOptions options_;
  Counters counters_;
  Clock::time_point started_ = Clock::now();
  int metrics_ = -1;
  std::map<int, MetricsClient> metrics_clients_;
  int epoll_ = -1;
  int listener_ = -1;
  int signals_ = -1;
  int timer_ = -1;
  bool stop_ = false;
  std::shared_ptr<const KeySet> keys_;
  std::vector<Stamp> installed_;
  std::vector<Stamp> pending_;
  std::map<int, std::unique_ptr<Connection>> connections_;
};

void Server::listen_socket() {
  const std::string &path = options_.socket_path;
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    usage_error("--socket " + base::quote(path) + " is empty or longer than 107 bytes");
  }
  // The directory must not let others replace the socket: created 0755 when missing, and
  // refused when group or others may write it (unless sticky, like /tmp).
  const std::string dir =
      path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  if (!dir.empty()) {
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      failure("cannot create " + base::quote(dir) + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      failure(base::quote(dir) + " is not a directory");
    }
    if ((st.st_mode & 0022) != 0 && (st.st_mode & S_ISVTX) == 0) {
      failure("directory " + base::quote(dir) + " is writable by group or others (mode " +
              base::file_mode(st.st_mode) + "): anyone could replace the agent's socket");
    }
  }
  // A socket left by an agent that died is replaced; a live agent's is not.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) failure(base::quote(path) + " exists and is not a socket");
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    const bool live = ::connect(probe, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    ::close(probe);
    if (live) failure("another agent is serving " + base::quote(path));
  }
  // Bind under a temporary name, open it to everyone (the policy decides who is served), then
  // rename it into place: the path never names a socket with other permissions.
  const std::string tmp = path + ".tmp" + std::to_string(::getpid());
  if (tmp.size() >= sizeof(sockaddr_un{}.sun_path)) {
    usage_error("--socket " + base::quote(path) + " is too long");
  }
  ::unlink(tmp.c_str());
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, tmp.data(), tmp.size());
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      ::chmod(tmp.c_str(), 0666) != 0 || ::listen(listener_, 512) != 0 ||
      ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int code = errno;
    ::unlink(tmp.c_str());
    failure("cannot listen on " + base::quote(path) + ": " + std::strerror(code));
  }
}

void Server::run() {
  // Room for many clients: the descriptor limit up to its hard limit.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
  auto loaded = KeySet::load(options_.policy_path, nullptr);
  if (!loaded) usage_error(loaded.error().message);
  keys_ = std::move(*loaded);
  installed_ = stamps(keys_->files());

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  (void)signal(SIGPIPE, SIG_IGN);
  signals_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  timer_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  itimerspec every{{0, 250000000}, {0, 250000000}};
  ::timerfd_settime(timer_, 0, &every, nullptr);
  listen_socket();
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (!options_.metrics.empty()) open_metrics();
  for (int fd : {listener_, signals_, timer_, metrics_}) {
    if (fd < 0) continue;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
  }
  log_line("serving " + std::to_string(keys_->size()) + " key(s) from " +
           base::quote(options_.policy_path) + " on " + base::quote(options_.socket_path));
  std::array<epoll_event, 256> events{};
  while (!stop_) {
    const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      failure(std::string("epoll_wait: ") + std::strerror(errno));
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      const unsigned ev = events[static_cast<std::size_t>(i)].events;
      if (fd == listener_) {
        accept_clients();
      } else if (fd == metrics_) {
        accept_metrics();
      } else if (metrics_clients_.count(fd) != 0) {
        serve_metrics(fd);
      } else if (fd == signals_) {
        signalfd_siginfo si{};
        while (::read(signals_, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGHUP) {
            reload("SIGHUP");
          } else {
            stop_ = true;
          }
        }
      } else if (fd == timer_) {
        std::uint64_t ticks = 0;
        (void)!::read(timer_, &ticks, sizeof ticks);
        tick();
      } else {
        auto it = connections_.find(fd);
        if (it == connections_.end()) continue;
        Connection &c = *it->second;
        if ((ev & (EPOLLERR | EPOLLHUP)) != 0 && c.out.empty()) {
          close_connection(fd);
          continue;
        }
        if ((ev & EPOLLOUT) != 0) on_writable(c);
        if (connections_.count(fd) != 0 && (ev & EPOLLIN) != 0) on_readable(*connections_[fd]);
      }
    }
  }
  log_line("stopping");
  ::unlink(options_.socket_path.c_str());
}

void Server::accept_clients() {
  for (;;) {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN, or out of descriptors: the backlog waits for the next round
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->last_activity = Clock::now();
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      ::close(fd);
      continue;
    }
    c->client.uid = cred.uid;
    c->client.gid = cred.gid;
    c->client.pid = cred.pid;
    c->client.user = user_name(cred.uid);
    c->client.program = program_of(cred.pid);
    if (connections_.size() >= options_.max_connections) {
      ++counters_.busy;
      const auto frame = agent::encode(agent::ErrorResponse{
          agent::ErrorCode::busy, "ssx agent is serving its maximum number of connections"});
      (void)!::send(fd, frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    connections_.emplace(fd, std::move(c));
  }
}

void Server::close_connection(int fd) {
  ::epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  connections_.erase(fd);
}

void Server::on_readable(Connection &c) {
  if (!c.out.empty()) return;  // one request at a time: the response goes first
  for (;;) {
    if (c.in.size() == c.want) {
      if (!c.reading_body) {
        auto length = agent::frame_length(
            std::span<const std::uint8_t, agent::kFrameHeader>(c.in.data(), agent::kFrameHeader),
            agent::kMaxRequestBody);
        if (!length) {
          refuse(c, agent::ErrorCode::malformed, "malformed request: " + length.error().message,
                 true);
          return;
        }
        c.reading_body = true;
        c.want = agent::kFrameHeader + *length;
        continue;
      }
      handle_request(c);
      return;
    }
    std::uint8_t buf[agent::kFrameHeader + agent::kMaxRequestBody];
    const std::size_t room = c.want - c.in.size();
    const ssize_t n = ::recv(c.fd, buf, room, MSG_DONTWAIT);
    if (n > 0) {
      if (c.in.empty()) c.request_started = Clock::now();
      c.in.insert(c.in.end(), buf, buf + n);
      c.last_activity = Clock::now();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    close_connection(c.fd);  // closed by the client, or an error
    return;
  }
}

void Server::handle_request(Connection &c) {
  const std::span<const std::uint8_t> body(c.in.data() + agent::kFrameHeader,
                                           c.in.size() - agent::kFrameHeader);
  auto request = agent::decode_request(body);
  c.in.clear();
  c.want = agent::kFrameHeader;
  c.reading_body = false;
  if (!request) {
    ++counters_.malformed;
    audit(c, "-", "-", "request", "malformed", request.error().message);
    refuse(c, agent::ErrorCode::malformed, "malformed request: " + request.error().message, true);
    return;
  }
  if (request->type == agent::Type::status_request) {
    if (c.client.uid != 0 && c.client.uid != ::geteuid()) {
      audit(c, "-", "-", "status", "refused", "status is for root and the agent's own user");
      refuse(c, agent::ErrorCode::refused,
             "uid " + std::to_string(c.client.uid) + " (" + c.client.user +
                 ") may not read the agent's status (root only)",
             true);
      return;
    }
    respond(c, agent::encode_status_response(status_text()), false);
    return;
  }
  const bool sign = request->type == agent::Type::sign_request;
  const std::string &name = sign ? request->sign.key : request->chain.key;
  const std::string &rule = sign ? request->sign.rule : request->chain.rule;
  const std::string_view op = sign ? "sign" : "chain";
  auto key = keys_->authorise(c.client, name);
  if (!key) {
    ++counters_.refusals[name];
    audit(c, name, rule, op, "refused", key.error().message);
    refuse(c, agent::ErrorCode::refused, key.error().message, true);
    return;
  }
  if (!sign) {
    agent::ChainResponse response;
    response.certificate = (*key)->current->certificate;
    response.chain_pem = (*key)->current->chain_pem;
    auto frame = agent::encode(response);
    if (!frame) {
      refuse(c, agent::ErrorCode::failed, frame.error().message, true);
      return;
    }
    respond(c, std::move(*frame), false);
    return;
  }
  auto signed_ = keys_->sign(**key, request->sign);
  if (!signed_) {
    audit(c, name, rule, op, "failed", signed_.error().message);
    refuse(c, signed_.error().code == ESTALE ? agent::ErrorCode::stale : agent::ErrorCode::failed,
           signed_.error().message, true);
    return;
  }
  ++counters_.signatures[name];
  audit(c, name, rule, op, signed_->rotated ? "ok-previous-certificate" : "ok", "");
  auto frame = agent::encode(*signed_);
  if (!frame) {
    refuse(c, agent::ErrorCode::failed, frame.error().message, true);
    return;
  }
  respond(c, std::move(*frame), false);
}

void Server::refuse(Connection &c, agent::ErrorCode code, const std::string &message,
                    bool close_after) {
  respond(c, agent::encode(agent::ErrorResponse{code, message}), close_after);
}

void Server::respond(Connection &c, std::vector<std::uint8_t> frame, bool close_after) {
  c.out = std::move(frame);
  c.sent = 0;
  c.close_after_write = close_after;
  on_writable(c);
}

void Server::on_writable(Connection &c) {
  const int fd = c.fd;
  while (c.sent < c.out.size()) {
    const ssize_t n =
        ::send(fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      epoll_event ev{};
      ev.events = EPOLLOUT;  // not EPOLLRDHUP: a half-closed peer would wake us in a loop
      ev.data.fd = fd;
      ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
      c.last_activity = Clock::now();
      return;
    }
    close_connection(fd);
    return;
  }
  if (c.close_after_write) {
    close_connection(fd);
    return;
  }
  c.out.clear();
  c.sent = 0;
  c.last_activity = Clock::now();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
}

void Server::audit(const Connection &c, std::string_view key, std::string_view rule,
                   std::string_view op, std::string_view result, const std::string &reason) {
  std::string line = "audit time=" + utc_now() + " uid=" + std::to_string(c.client.uid) +
                     " user=" + base::quote(c.client.user) +
                     " pid=" + std::to_string(c.client.pid) +
                     " program=" + base::quote(c.client.program) + " key=" + base::quote(key) +
                     " rule=" + base::quote(rule.empty() ? "-" : rule) + " op=" + std::string(op) +
                     " result=" + std::string(result);
  if (!reason.empty()) line += " reason=" + base::quote(reason);
  log_line(line);
}

void Server::tick() {
  const auto now = Clock::now();
  std::vector<int> expired;
  for (const auto &[fd, c] : connections_) {
    // A request under way has request_timeout from its first byte; otherwise idle_timeout.
    const bool mid_request = !c->in.empty();
    const bool late = mid_request ? now - c->request_started > options_.request_timeout
                                  : now - c->last_activity > options_.idle_timeout;
    if (late) expired.push_back(fd);
  }
  for (int fd : expired) close_connection(fd);
  std::vector<int> slow;
  for (const auto &[fd, m] : metrics_clients_) {
    if (now > m.deadline) slow.push_back(fd);
  }
  for (int fd : slow) {
    ::close(fd);
    metrics_clients_.erase(fd);
  }
  // Files changed: reload once they have stopped changing (same stamps at two checks).
  static int counter = 0;
  if (++counter % 4 != 0) return;  // once a second
  std::vector<Stamp> now_stamps = stamps(keys_->files());
  if (now_stamps == installed_) {
    pending_.clear();
    return;
  }
  if (now_stamps != pending_) {
    pending_ = std::move(now_stamps);
    return;
  }
  pending_.clear();
  reload("a changed file");
}

void Server::reload(const char *why) {
  auto loaded = KeySet::load(options_.policy_path, keys_.get());
  installed_ = stamps(keys_->files());
  if (!loaded) {
    // Keep the keys in force; look again only when the files change again.
    log_line(std::string("reload after ") + why +
             " failed, keeping the keys in force: " + loaded.error().message);
    installed_ = stamps(keys_->files());
    return;
  }
  keys_ = std::move(*loaded);
  installed_ = stamps(keys_->files());
  ++counters_.reloads;
  log_line(std::string("reloaded after ") + why + ": serving " + std::to_string(keys_->size()) +
           " key(s)");
}

std::string Server::status_text() const {
  const auto up = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_);
  std::string out = "pid " + std::to_string(::getpid()) + ", up " + std::to_string(up.count()) +
                    " s, policy " + base::quote(options_.policy_path) + ", socket " +
                    base::quote(options_.socket_path) + "\n";
  out += "keys: " + std::to_string(keys_->size()) + "\n";
  for (const std::string &line : keys_->describe()) {
    const std::string name = line.substr(0, line.find(' '));
    auto count = [&](const std::map<std::string, std::uint64_t> &m) {
      auto it = m.find(name);
      return std::to_string(it == m.end() ? 0 : it->second);
    };
    out += "  " + line + " signatures=" + count(counters_.signatures) +
           " refusals=" + count(counters_.refusals) + "\n";
  }
  out += "connections: " + std::to_string(connections_.size()) + " (max " +
         std::to_string(options_.max_connections) + ")\n";
  std::size_t listed = 0;
  for (const auto &[fd, c] : connections_) {
    if (++listed > 100) {
      out += "  ...\n";
      break;
    }
    out += "  uid " + std::to_string(c->client.uid) + " (" + c->client.user + ") pid " +
           std::to_string(c->client.pid) + " program " + base::quote(c->client.program) + "\n";
  }
  out += "signatures: " + std::to_string(total(counters_.signatures)) +
         ", refusals: " + std::to_string(total(counters_.refusals)) +
         ", malformed: " + std::to_string(counters_.malformed) +
         ", busy: " + std::to_string(counters_.busy) +
         ", reloads: " + std::to_string(counters_.reloads) + " (failed " +
         std::to_string(counters_.reload_failures) + ")\n";
  return out;
}

std::string Server::metrics_text() const {
  std::string out;
  auto family = [&](const char *name, const char *type, const char *help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  };
  family("ssx_agent_signatures_total", "counter", "Signatures made, per key.");
  for (const auto &[k, v] : counters_.signatures) {
    out += "ssx_agent_signatures_total{key=\"" + k + "\"} " + std::to_string(v) + "\n";
  }
  family("ssx_agent_refusals_total", "counter", "Requests refused by the policy, per key.");
  for (const auto &[k, v] : counters_.refusals) {
    out += "ssx_agent_refusals_total{key=\"" + k + "\"} " + std::to_string(v) + "\n";
  }
  family("ssx_agent_malformed_requests_total", "counter", "Malformed requests.");
  out += "ssx_agent_malformed_requests_total " + std::to_string(counters_.malformed) + "\n";
  family("ssx_agent_busy_total", "counter", "Connections refused at --max-connections.");
  out += "ssx_agent_busy_total " + std::to_string(counters_.busy) + "\n";
  family("ssx_agent_reloads_total", "counter", "Successful reloads.");
  out += "ssx_agent_reloads_total " + std::to_string(counters_.reloads) + "\n";
  family("ssx_agent_reload_failures_total", "counter", "Failed reloads (the keys in force stay).");
  out += "ssx_agent_reload_failures_total " + std::to_string(counters_.reload_failures) + "\n";
  family("ssx_agent_connections", "gauge", "Client connections open.");
  out += "ssx_agent_connections " + std::to_string(connections_.size()) + "\n";
  family("ssx_agent_keys", "gauge", "Keys loaded.");
  out += "ssx_agent_keys " + std::to_string(keys_->size()) + "\n";
  return out;
}

void Server::open_metrics() {
  auto where = parse_host_port(options_.metrics, HostPortRules{false, true});
  if (!where) usage_error("--metrics: " + where.error().message);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo *res = nullptr;
  if (::getaddrinfo(where->host.c_str(), std::to_string(where->port).c_str(), &hints, &res) != 0 ||
      res == nullptr) {
    usage_error("--metrics " + base::quote(options_.metrics) + ": HOST must be an IP address");
  }
  metrics_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(metrics_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const bool ok = metrics_ >= 0 && ::bind(metrics_, res->ai_addr, res->ai_addrlen) == 0 &&
                  ::listen(metrics_, 16) == 0;
  ::freeaddrinfo(res);
  if (!ok) failure("--metrics " + base::quote(options_.metrics) + ": " + std::strerror(errno));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(metrics_, reinterpret_cast<sockaddr *>(&bound), &len);
  const int port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in *>(&bound)->sin_port);
  log_line("metrics on port " + std::to_string(port));
}

void Server::accept_metrics() {
  for (;;) {
    const int fd = ::accept4(metrics_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (metrics_clients_.size() >= 16) {
      ::close(fd);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
    metrics_clients_[fd].deadline = Clock::now() + std::chrono::seconds(2);
  }
}

void Server::serve_metrics(int fd) {
  MetricsClient &m = metrics_clients_[fd];
  auto done = [&] {
    ::close(fd);
    metrics_clients_.erase(fd);
  };
  if (m.response.empty()) {
    char buf[2048];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      done();
      return;
    }
    m.request.append(buf, static_cast<std::size_t>(n));
    if (m.request.size() > 4096) {
      done();
      return;
    }
    if (m.request.find("\r\n\r\n") == std::string::npos &&
        m.request.find("\n\n") == std::string::npos) {
      return;
    }
    const bool metrics = m.request.rfind("GET /metrics ", 0) == 0;
    const std::string body = metrics ? metrics_text() : "not found\n";
    m.response = std::string(metrics ? "HTTP/1.0 200 OK\r\n" : "HTTP/1.0 404 Not Found\r\n") +
                 "Content-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &ev);
  }
  while (m.sent < m.response.size()) {
    const ssize_t n = ::send(fd, m.response.data() + m.sent, m.response.size() - m.sent,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      m.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) return;
    break;
  }
  done();
}

}  // namespace

void run(const ServerOptions &options) {
  Server(options).run();
}

void print_status(const std::string &socket_path) {
  agent::Endpoint endpoint;
  endpoint.socket_path = socket_path;
  endpoint.trusted_uid = ::geteuid();
  auto text = agent::status(endpoint);
  if (!text) failure(text.error().message);
  (void)std::fputs(text->c_str(), stdout);
}

}  // namespace ssx::cli::agent_daemon

// SPDX-License-Identifier: Apache-2.0
#include "agent/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/text.hpp"
#include "base/unique_fd.hpp"
#include "ssx/ssx.h"

namespace ssx::agent {
namespace {

using Clock = std::chrono::steady_clock;

using Fd = base::UniqueFd;

class Exchange {
 public:
  explicit Exchange(const Endpoint &agent)
      : agent_(agent), deadline_(Clock::now() + agent.timeout) {}

  Result<Response> run(const std::vector<std::uint8_t> &frame);

 private:
  Failure unavailable(const std::string &why) const {
    return fail(EACCES, SSX_REASON_AGENT_UNAVAILABLE,
                "ssx agent at " + base::quote(agent_.socket_path) + " is not available: " + why);
  }
  Failure timed_out() const {
    return fail(ETIMEDOUT, SSX_REASON_AGENT_UNAVAILABLE,
                "ssx agent at " + base::quote(agent_.socket_path) + " did not answer within " +
                    std::to_string(agent_.timeout.count()) + " ms");
  }
  // wait polls |fd| for |events| until the deadline: false when it passed.
  bool wait(int fd, short events) const {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd, events, 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()) + 1);
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return true;  // let the next call report the error
    }
  }
  Result<void> read_exact(int fd, std::uint8_t *out, std::size_t n) const;

  const Endpoint &agent_;
  Clock::time_point deadline_;
};

Result<void> Exchange::read_exact(int fd, std::uint8_t *out, std::size_t n) const {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::recv(fd, out + got, n - got, MSG_DONTWAIT);
    if (r > 0) {
      got += static_cast<std::size_t>(r);
      continue;
    }
    if (r == 0) return unavailable("it closed the connection before answering");
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return unavailable(std::string("receive: ") + std::strerror(errno));
    if (!wait(fd, POLLIN)) return timed_out();
  }
  return {};
}

Result<Response> Exchange::run(const std::vector<std::uint8_t> &frame) {
  if (agent_.socket_path.empty() || agent_.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return unavailable("the socket path is empty or too long");
  }
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return unavailable(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, agent_.socket_path.data(), agent_.socket_path.size());
  for (;;) {
    if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0) break;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EINPROGRESS) {  // the agent's backlog is full
      if (!wait(fd.get(), POLLOUT)) return timed_out();
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) break;
      return unavailable(std::string("connect: ") + std::strerror(err));
    }
    return unavailable(std::string("connect: ") + std::strerror(errno));
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return unavailable(std::string("SO_PEERCRED: ") + std::strerror(errno));
  }
  if (cred.uid != 0 && cred.uid != agent_.trusted_uid) {
    return unavailable("the process listening there runs as uid " + std::to_string(cred.uid) +
                       ", not root or the policy file's owner (uid " +
                       std::to_string(agent_.trusted_uid) + ")");
  }
  std::size_t sent = 0;
  while (sent < frame.size()) {
    const ssize_t n =
        ::send(fd.get(), frame.data() + sent, frame.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return unavailable(std::string("send: ") + std::strerror(errno));
    if (!wait(fd.get(), POLLOUT)) return timed_out();
  }
  std::array<std::uint8_t, kFrameHeader> header{};
  if (auto r = read_exact(fd.get(), header.data(), header.size()); !r) return r.error();
  auto length = frame_length(header, kMaxResponseBody);
  if (!length) return unavailable("malformed answer: " + length.error().message);
  std::vector<std::uint8_t> body(*length);
  if (auto r = read_exact(fd.get(), body.data(), body.size()); !r) return r.error();
  auto response = decode_response(body);
  if (!response) return unavailable("malformed answer: " + response.error().message);
  if (response->type == Type::error_response) {
    // ESTALE is for the library itself (the certificate it presents is no longer the key's: it
    // rebuilds its context); tls::agent_key reports it to the application as EACCES.
    return fail(response->error.code == ErrorCode::stale ? ESTALE : EACCES,
                SSX_REASON_AGENT_REFUSED, "ssx agent: " + response->error.message);
  }
  return response;
}

}  // namespace

Result<ChainResponse> fetch_chain(const Endpoint &agent, const ChainRequest &request) {
  auto frame = encode(request);
  if (!frame) return frame.error();
  auto response = Exchange(agent).run(*frame);
  if (!response) return response.error();
  if (response->type != Type::chain_response) {
    return fail(EACCES, SSX_REASON_AGENT_UNAVAILABLE, "ssx agent answered with the wrong message");
  }
  return std::move(response->chain);
}

Result<SignResponse> sign(const Endpoint &agent, const SignRequest &request) {
  auto frame = encode(request);
  if (!frame) return frame.error();
  auto response = Exchange(agent).run(*frame);
  if (!response) return response.error();
  if (response->type != Type::sign_response) {
    return fail(EACCES, SSX_REASON_AGENT_UNAVAILABLE, "ssx agent answered with the wrong message");
  }
  return std::move(response->sign);
}

Result<std::string> status(const Endpoint &agent) {
  auto response = Exchange(agent).run(encode_status_request());
  if (!response) return response.error();
  if (response->type != Type::status_response) {
    return fail(EACCES, SSX_REASON_AGENT_UNAVAILABLE, "ssx agent answered with the wrong message");
  }
  return std::move(response->status);
}

}  // namespace ssx::agent

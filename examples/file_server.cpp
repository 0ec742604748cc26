// SPDX-License-Identifier: Apache-2.0
// file_server.cpp — serves files to mutually authenticated clients, each file opened *as the
// client's local account*, so the kernel's own permission checks decide what a client may read.
//
//   file_server [PORT] [COUNT]
//
// Protocol: the client sends a path and closes its sending side (close_notify); the server
// answers "OK\n" and the file, or "DENIED <reason>\n". The policy ($SSX_POLICY) must give the
// server a certificate, set peer_authentication = "required", and map client principals to
// accounts with [[identity]] tables, e.g.
//
//   [[identity]]
//   peer = "spiffe://example.org/alice"
//   user = "alice"
//
// The flow is the one the model prescribes: accept, receive the request, impersonate the peer,
// open the resource, revert, reply.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ssx/ssx.hpp"

namespace {

std::string receive_request(ssx::Socket &client) {
  std::string request;
  std::byte buf[1024];
  while (request.size() < 4096) {
    auto n = client.recv(buf);
    if (!n || *n == 0) break;
    request.append(reinterpret_cast<const char *>(buf), *n);
  }
  return request;
}

void reply(ssx::Socket &client, const std::string &text) {
  (void)client.send(std::as_bytes(std::span(text)));
}

void serve(ssx::Socket &client) {
  const std::string path = receive_request(client);
  int fd = -1;
  int open_errno = 0;
  {
    auto as_peer = ssx::Impersonation::begin(client);
    if (!as_peer) {
      reply(client, "DENIED " + as_peer.error().message + "\n");
      return;
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // checked against the peer's account
    open_errno = errno;
  }  // reverted: the server is itself again
  if (fd < 0) {
    reply(client, std::string("DENIED ") + std::strerror(open_errno) + "\n");
    return;
  }
  reply(client, "OK\n");
  char buf[16384];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    if (!client.send(std::as_bytes(std::span(buf, static_cast<size_t>(n))))) break;
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char **argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 4444);
  const long count = argc > 2 ? std::atol(argv[2]) : -1;
  ssx::SecuritySettings settings;
  settings.guarantee_encryption = true;
  auto listener = ssx::Listener::bind("127.0.0.1", port, settings);
  if (!listener) {
    std::fprintf(stderr, "file_server: %s\n", listener.error().message.c_str());
    return 1;
  }
  std::printf("file_server: listening on 127.0.0.1:%u\n", listener->port());
  std::fflush(stdout);
  for (long served = 0; count < 0 || served < count; ++served) {
    auto client = listener->accept();
    if (!client) {
      std::fprintf(stderr, "file_server: rejected a client: %s\n", client.error().message.c_str());
      continue;
    }
    auto info = client->query_security();
    std::printf("file_server: request from %s\n",
                info ? info->peer_principal.c_str() : "(unknown peer)");
    std::fflush(stdout);
    serve(*client);
    (void)client->shutdown();
  }
  return 0;
}

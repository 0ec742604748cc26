// SPDX-License-Identifier: Apache-2.0
// server.cpp — a C++ server that answers each client securely with ssx.
//
//   server [PORT] [COUNT]
//
// Listens on 127.0.0.1:PORT (default 4433), serves COUNT connections (default: forever), and
// answers each with who the client is and what it sent, in upper case. The policy
// ($SSX_POLICY) gives the server its certificate and says whether clients must present one.
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ssx/ssx.hpp"

int main(int argc, char **argv) {
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 4433);
  const long count = argc > 2 ? std::atol(argv[2]) : -1;
  ssx::SecuritySettings settings;
  settings.guarantee_encryption = true;
  auto listener = ssx::Listener::bind("127.0.0.1", port, settings);
  if (!listener) {
    std::fprintf(stderr, "server: %s\n", listener.error().message.c_str());
    return 1;
  }
  std::printf("server: listening on 127.0.0.1:%u\n", listener->port());
  std::fflush(stdout);
  for (long served = 0; count < 0 || served < count; ++served) {
    auto client = listener->accept();
    if (!client) {  // one client's failed handshake does not stop the server
      std::fprintf(stderr, "server: rejected a client: %s\n", client.error().message.c_str());
      continue;
    }
    auto info = client->query_security().value();
    std::string request;
    std::byte buf[4096];
    for (;;) {
      auto n = client->recv(buf);
      if (!n) {
        std::fprintf(stderr, "server: receive: %s\n", n.error().message.c_str());
        break;
      }
      if (*n == 0) break;
      request.append(reinterpret_cast<const char *>(buf), *n);
    }
    std::string reply = "hello " +
                        (info.peer_principal.empty() ? "anonymous" : info.peer_principal) +
                        ", you said: ";
    for (char c : request) reply += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::printf("server: %s %s from \"%s\" (rule %s)\n", info.version.c_str(), info.cipher.c_str(),
                info.peer_principal.c_str(), info.policy_rule.c_str());
    std::fflush(stdout);
    if (auto sent = client->send(std::as_bytes(std::span(reply))); !sent) {
      std::fprintf(stderr, "server: send: %s\n", sent.error().message.c_str());
    }
    (void)client->shutdown();
  }
  return 0;
}

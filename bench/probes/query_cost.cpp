// SPDX-License-Identifier: Apache-2.0
// bench/probes/query_cost.cpp — what ssx_query_socket_security costs on an established connection.
//
// Not part of `make bench`. It loads the benchmark's policy from DIR (made by ssx_bench_pki),
// makes one connection to itself, and queries the client end: once, then QUERIES more times in
// batches of 100. It prints the first query's time and the best time per query over the batches
// (other load on the machine only ever adds time). For instructions, run it under
// `valgrind --tool=callgrind` and divide ssx_query_socket_security's inclusive cost by its calls.
//
//   build/bench/ssx_bench_pki DIR && build/bench/ssx_bench_probe_query DIR [QUERIES]

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "ssx/ssx.h"

namespace {

[[noreturn]] void die(const char *what) {
  std::fprintf(stderr, "error: %s: %s — %s\n", what, std::strerror(errno), ssx_last_error());
  std::exit(1);
}

constexpr ssx_security_settings kSettings = {SSX_PROTOCOL_DEFAULT, SSX_GUARANTEE_ENCRYPTION};

int secured_socket() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  if (ssx_set_socket_security(fd, &kSettings, sizeof kSettings) != 0)
    die("ssx_set_socket_security");
  return fd;
}

double since_ns(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: %s DIR [QUERIES]\n", argv[0]);
    return 2;
  }
  const std::string policy = std::string(argv[1]) + "/policy.toml";
  const long queries = argc == 3 ? std::strtol(argv[2], nullptr, 10) : 10000;
  if (ssx_load_policy(policy.c_str()) != 0) die("ssx_load_policy");

  int listener = secured_socket();
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(listener, reinterpret_cast<sockaddr *>(&address), length) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
    die("listen");
  }
  std::thread server([listener] {
    int fd = ssx_accept(listener, nullptr, nullptr);
    if (fd < 0) die("ssx_accept");
    char buf[64];
    while (ssx_recv(fd, buf, sizeof buf, 0) > 0) {
    }
    ssx_close(fd);
  });

  int client = secured_socket();
  if (ssx_set_socket_peer_target_name(client, "localhost", nullptr, 0) != 0) die("target name");
  if (ssx_connect(client, reinterpret_cast<sockaddr *>(&address), sizeof address) != 0) {
    die("ssx_connect");
  }

  ssx_security_info *info = nullptr;
  auto t0 = std::chrono::steady_clock::now();
  if (ssx_query_socket_security(client, nullptr, 0, &info) != 0) die("query");
  const double first_ns = since_ns(t0);
  ssx_free_security_info(info);

  double best_ns = 1e18;
  for (long done = 0; done < queries; done += 100) {
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 100; ++i) {
      if (ssx_query_socket_security(client, nullptr, 0, &info) != 0) die("query");
      ssx_free_security_info(info);
    }
    best_ns = std::min(best_ns, since_ns(t0) / 100);
  }
  if (ssx_shutdown(client, SHUT_WR) != 0) die("ssx_shutdown");
  server.join();
  ssx_close(client);
  ssx_close(listener);
  std::printf("{\"probe\":\"query\",\"first_ns\":%.0f,\"repeated_best_ns\":%.0f,\"queries\":%ld}\n",
              first_ns, best_ns, queries + 1);
  return 0;
}

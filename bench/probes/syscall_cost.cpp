// SPDX-License-Identifier: Apache-2.0
// bench/probes/syscall_cost.cpp — what the calls on ssx's data path cost on this machine.
//
// Not part of `make bench`; docs/benchmarks.md quotes its output as evidence for the profile.
// Each figure is the best of 200 batches of 1,000 calls, so other load on the machine (which
// only ever adds time) is filtered out.
//
//   build/bench/ssx_bench_probe_syscalls

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace {

template <class F>
double best_ns(F &&f) {
  double best = 1e18;
  for (int batch = 0; batch < 200; ++batch) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1000; ++i) f();
    double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() /
        1000;
    if (ns < best) best = ns;
  }
  return best;
}

}  // namespace

int main() {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) != 0) return 1;
  int tcp = ::socket(AF_INET, SOCK_STREAM, 0);
  struct stat st {};
  char byte = 0;
  timeval tv{};
  socklen_t len = sizeof tv;
  std::printf("{\"fstat_ns\":%.0f,", best_ns([&] { ::fstat(tcp, &st); }));
  std::printf("\"fcntl_getfl_ns\":%.0f,", best_ns([&] { ::fcntl(tcp, F_GETFL); }));
  std::printf("\"getsockopt_rcvtimeo_ns\":%.0f,", best_ns([&] {
                len = sizeof tv;
                ::getsockopt(tcp, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
              }));
  std::printf("\"recv_eagain_ns\":%.0f,",
              best_ns([&] { ::recv(pair[0], &byte, 1, MSG_DONTWAIT); }));
  std::printf("\"poll_zero_timeout_ns\":%.0f,", best_ns([&] {
                pollfd p{pair[0], POLLIN, 0};
                ::poll(&p, 1, 0);
              }));
  std::printf("\"getpid_ns\":%.0f,", best_ns([&] { (void)::getpid(); }));
  std::printf("\"ERR_clear_error_ns\":%.0f,", best_ns([&] { ERR_clear_error(); }));
  std::printf("\"ERR_peek_error_then_clear_ns\":%.0f}\n", best_ns([&] {
                if (ERR_peek_error() != 0) ERR_clear_error();
              }));
  return 0;
}

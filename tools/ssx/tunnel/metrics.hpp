// SPDX-License-Identifier: Apache-2.0
// tools/ssx/tunnel/metrics.hpp — the tunnel's counters and their Prometheus text rendering.
//
// Each worker owns one cache-line-aligned block of counters and is its only writer (relaxed
// atomics, no sharing between cores on the data path); the metrics endpoint sums the blocks.

#ifndef SSX_TOOLS_SSX_TUNNEL_METRICS_HPP
#define SSX_TOOLS_SSX_TUNNEL_METRICS_HPP

#include <array>
#include <atomic>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace ssx::cli::tunnel {

// Why a connection ended; one value per connection, in its log line and in a counter.
enum class CloseReason : int {
  done,              // both directions ended cleanly (EOF / close_notify each way)
  handshake_failed,  // the security handshake (or, client mode, the secured dial) failed
  connect_failed,    // server mode: the cleartext connect to --to failed
  setup_timeout,     // connect + handshake outlived --setup-timeout
  tls_truncated,     // the secured side ended without close_notify: cleartext side reset
  tls_error,         // the secured side failed otherwise (corrupt records, reset while sending)
  cleartext_error,   // the cleartext side reset or failed: secured side aborted (no close_notify)
  shutdown,          // still open when the SIGTERM grace period ran out
  client_reset,      // the client reset the connection before it was accepted or sent a byte
  shed,              // an unfinished handshake dropped for a newer one (budget or per-source cap)
  idle_timeout,      // nothing moved either way for the idle timeout: both sides reset
  count_
};

const char *close_reason_name(CloseReason reason);

inline constexpr int kErrnoSlots = 256;  // errno values above go to the last slot

struct alignas(64) WorkerCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> closed{0};
  std::atomic<std::uint64_t> setting_up{0};          // a gauge: connecting or handshaking now
  std::atomic<std::uint64_t> bytes_in{0};            // from the listening side towards --to
  std::atomic<std::uint64_t> bytes_out{0};           // from --to back towards the listening side
  std::atomic<std::uint64_t> handshakes_full{0};     // completed handshakes: new sessions
  std::atomic<std::uint64_t> handshakes_resumed{0};  // completed handshakes: resumed sessions
  std::array<std::atomic<std::uint64_t>, kErrnoSlots> handshake_failures{};
  std::array<std::atomic<std::uint64_t>, kErrnoSlots> connect_failures{};
  std::array<std::atomic<std::uint64_t>, static_cast<int>(CloseReason::count_)> closes{};

  static void add(std::atomic<std::uint64_t> &counter, std::uint64_t n) {
    counter.fetch_add(n, std::memory_order_relaxed);
  }
  static std::atomic<std::uint64_t> &slot(
      std::array<std::atomic<std::uint64_t>, kErrnoSlots> &by_errno, int code) {
    return by_errno[static_cast<size_t>(code > 0 && code < kErrnoSlots ? code : kErrnoSlots - 1)];
  }
};

// CertificateExpiry is one certificate of the policy in force, for
// ssx_certificate_expiry_seconds.
struct CertificateExpiry {
  std::string rule;     // "defaults" or the rule's name
  std::string subject;  // RFC 2253
  std::string file;     // the certificate file
  std::time_t not_after = 0;
};

class Metrics {
 public:
  explicit Metrics(unsigned workers);

  WorkerCounters &worker(unsigned index) { return *workers_[index]; }
  std::atomic<std::uint64_t> reloads_ok{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<std::uint64_t> auto_reloads{0};  // the library's reloads when a file changed
  std::atomic<std::uint64_t> log_lines_dropped{0};

  // set_certificates replaces the certificates reported (at start and after every reload).
  // Thread-safe.
  void set_certificates(std::vector<CertificateExpiry> certificates);

  // render returns the Prometheus text exposition format (version 0.0.4); |now| is the time the
  // expiry gauges count from.
  std::string render(std::time_t now = std::time(nullptr)) const;

 private:
  std::vector<std::unique_ptr<WorkerCounters>> workers_;
  mutable std::mutex certificates_mu_;
  std::vector<CertificateExpiry> certificates_;
};

}  // namespace ssx::cli::tunnel

#endif  // SSX_TOOLS_SSX_TUNNEL_METRICS_HPP

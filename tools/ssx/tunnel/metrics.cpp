// SPDX-License-Identifier: Apache-2.0
#include "metrics.hpp"

#include <utility>

#include "errno_name.hpp"

namespace ssx::cli::tunnel {

const char *close_reason_name(CloseReason reason) {
  switch (reason) {
    case CloseReason::done:
      return "done";
    case CloseReason::handshake_failed:
      return "handshake-failed";
    case CloseReason::connect_failed:
      return "connect-failed";
    case CloseReason::setup_timeout:
      return "setup-timeout";
    case CloseReason::tls_truncated:
      return "tls-truncated";
    case CloseReason::tls_error:
      return "tls-error";
    case CloseReason::cleartext_error:
      return "cleartext-error";
    case CloseReason::shutdown:
      return "shutdown";
    case CloseReason::client_reset:
      return "client-reset";
    case CloseReason::shed:
      return "shed";
    case CloseReason::idle_timeout:
      return "idle-timeout";
    default:
      return "unknown";
  }
}

Metrics::Metrics(unsigned workers) {
  for (unsigned i = 0; i < workers; ++i) workers_.push_back(std::make_unique<WorkerCounters>());
}

void Metrics::set_certificates(std::vector<CertificateExpiry> certificates) {
  std::lock_guard<std::mutex> lock(certificates_mu_);
  certificates_ = std::move(certificates);
}

namespace {

// label_value escapes a Prometheus label value: backslash, double quote and line feed.
std::string label_value(const std::string &value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::uint64_t load(const std::atomic<std::uint64_t> &counter) {
  return counter.load(std::memory_order_relaxed);
}

void header(std::string &out, const char *name, const char *type, const char *help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// labelled returns NAME{reason="ENAME"}, built by appending: GCC 12 at -O3 warns falsely
// (-Wrestrict, GCC bug 105329) about `"literal" + std::string` once inlined.
std::string labelled(const char *name, int error) {
  std::string text = name;
  text += "{reason=\"";
  text += errno_name(error);
  text += "\"}";
  return text;
}

void sample(std::string &out, const std::string &name, std::uint64_t value) {
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

std::string Metrics::render(std::time_t now) const {
  std::uint64_t accepted = 0, closed = 0, in = 0, out_bytes = 0, setting_up = 0;
  std::uint64_t full = 0, resumed = 0;
  std::array<std::uint64_t, kErrnoSlots> handshake{}, connect{};
  std::array<std::uint64_t, static_cast<int>(CloseReason::count_)> closes{};
  // closed first: a connection counted closed is then surely counted accepted, so the open
  // gauge never goes negative while workers run.
  for (const auto &w : workers_) closed += load(w->closed);
  for (const auto &w : workers_) {
    accepted += load(w->accepted);
    setting_up += load(w->setting_up);
    in += load(w->bytes_in);
    out_bytes += load(w->bytes_out);
    full += load(w->handshakes_full);
    resumed += load(w->handshakes_resumed);
    for (int e = 0; e < kErrnoSlots; ++e) {
      handshake[e] += load(w->handshake_failures[e]);
      connect[e] += load(w->connect_failures[e]);
    }
    for (size_t r = 0; r < closes.size(); ++r) closes[r] += load(w->closes[r]);
  }

  std::string out;
  out.reserve(4096);
  header(out, "ssx_tunnel_connections_open", "gauge", "Connections currently open.");
  sample(out, "ssx_tunnel_connections_open", accepted >= closed ? accepted - closed : 0);
  header(out, "ssx_tunnel_connections_setting_up", "gauge",
         "Connections still connecting or handshaking (at most --max-handshakes).");
  sample(out, "ssx_tunnel_connections_setting_up", setting_up);
  header(out, "ssx_tunnel_connections_total", "counter", "Connections accepted.");
  sample(out, "ssx_tunnel_connections_total", accepted);
  header(out, "ssx_tunnel_connections_closed_total", "counter",
         "Connections closed, by reason (see docs/cli.md).");
  for (size_t r = 0; r < closes.size(); ++r) {
    sample(out,
           std::string("ssx_tunnel_connections_closed_total{reason=\"") +
               close_reason_name(static_cast<CloseReason>(r)) + "\"}",
           closes[r]);
  }
  header(out, "ssx_tunnel_handshakes_total", "counter",
         "Security handshakes completed, by whether they resumed a TLS session.");
  sample(out, "ssx_tunnel_handshakes_total{resumed=\"false\"}", full);
  sample(out, "ssx_tunnel_handshakes_total{resumed=\"true\"}", resumed);
  header(out, "ssx_tunnel_handshake_failures_total", "counter",
         "Security handshakes that failed, by errno name.");
  for (int e = 0; e < kErrnoSlots; ++e) {
    if (handshake[e] == 0) continue;
    sample(out, labelled("ssx_tunnel_handshake_failures_total", e), handshake[e]);
  }
  header(out, "ssx_tunnel_connect_failures_total", "counter",
         "Cleartext connects to --to that failed (server mode), by errno name.");
  for (int e = 0; e < kErrnoSlots; ++e) {
    if (connect[e] == 0) continue;
    sample(out, labelled("ssx_tunnel_connect_failures_total", e), connect[e]);
  }
  header(out, "ssx_tunnel_bytes_in_total", "counter",
         "Application bytes from the listening side forwarded towards --to.");
  sample(out, "ssx_tunnel_bytes_in_total", in);
  header(out, "ssx_tunnel_bytes_out_total", "counter",
         "Application bytes from --to forwarded back to the listening side.");
  sample(out, "ssx_tunnel_bytes_out_total", out_bytes);
  header(out, "ssx_tunnel_policy_reloads_total", "counter",
         "Policy reloads (SIGHUP), by result; a failed reload keeps the previous policy.");
  sample(out, "ssx_tunnel_policy_reloads_total{result=\"ok\"}", load(reloads_ok));
  sample(out, "ssx_tunnel_policy_reloads_total{result=\"error\"}", load(reloads_failed));
  header(out, "ssx_tunnel_policy_auto_reloads_total", "counter",
         "Policy reloads the library made by itself because a file the policy names changed.");
  sample(out, "ssx_tunnel_policy_auto_reloads_total", load(auto_reloads));
  header(out, "ssx_tunnel_log_lines_dropped_total", "counter",
         "Log lines dropped because stderr did not keep up.");
  sample(out, "ssx_tunnel_log_lines_dropped_total", load(log_lines_dropped));
  header(out, "ssx_certificate_expiry_seconds", "gauge",
         "Seconds until the notAfter of each certificate the policy in force names (negative: "
         "expired), by the table that names it, its subject and its file.");
  {
    std::lock_guard<std::mutex> lock(certificates_mu_);
    for (const auto &c : certificates_) {
      out += "ssx_certificate_expiry_seconds{rule=\"";
      out += label_value(c.rule);
      out += "\",subject=\"";
      out += label_value(c.subject);
      out += "\",file=\"";
      out += label_value(c.file);
      out += "\"} ";
      out += std::to_string(static_cast<long long>(c.not_after) - static_cast<long long>(now));
      out += '\n';
    }
  }
  return out;
}

}  // namespace ssx::cli::tunnel

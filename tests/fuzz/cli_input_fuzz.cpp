// SPDX-License-Identifier: Apache-2.0
// libFuzzer target: what an operator (or a unit file someone else wrote) hands the ssx command —
// HOST:PORT and unix:PATH addresses (common/address, common/unix_address, tunnel/address) and
// `ssx tunnel --config` files (tunnel/config).
//
// The first input byte picks the parser; the rest is its input:
//   0 (mod 3)  the address parsers, with every combination of their rules;
//   1          a tunnel --config file (written to a private temporary file, as the loader reads
//              a path), up to the 1 MiB the loader accepts.
//   2          both, on the same bytes.
// Beyond "no crash, leak, hang or sanitizer report":
//   - every refusal is EINVAL with a bounded message (an address is quoted with base::quote);
//   - an accepted HOST:PORT prints back (format_host_port) to text that parses to the same value;
//   - an accepted unix:PATH holds a path of at most 107 bytes, without NUL;
//   - a loaded config has 1 to 64 tunnels, each named (1 to 64 characters) with a location;
//     its addresses go through the parsers too; a refused file is EINVAL/EFBIG naming it.
//
// Run: make fuzz-smoke (all targets briefly) or make fuzz-long FUZZ_SECONDS=N.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/address.hpp"
#include "common/unix_address.hpp"
#include "tunnel/address.hpp"
#include "tunnel/config.hpp"

namespace {

constexpr std::size_t kMaxMessage = 1500;  // messages quote at most a bounded prefix

void check_refusal(const ssx::Failure &f) {
  if (f.code != EINVAL || f.message.empty() || f.message.size() > kMaxMessage) std::abort();
}

void addresses(std::string_view text) {
  for (int rules = 0; rules < 4; ++rules) {
    const ssx::cli::HostPortRules r{.allow_empty_host = (rules & 1) != 0,
                                    .allow_port_zero = (rules & 2) != 0};
    auto hp = ssx::cli::parse_host_port(text, r);
    if (!hp) {
      check_refusal(hp.error());
      continue;
    }
    if (hp->port == 0 && !r.allow_port_zero) std::abort();
    if (hp->host.empty() && !r.allow_empty_host) std::abort();
    auto again = ssx::cli::parse_host_port(ssx::cli::format_host_port(hp->host, hp->port), r);
    if (!again || again->host != hp->host || again->port != hp->port) std::abort();
  }
  if (ssx::cli::is_unix_address(text)) {
    auto ua = ssx::cli::parse_unix_address(text);
    if (!ua) {
      check_refusal(ua.error());
    } else if (ua->path.empty() || ua->path.size() > ssx::cli::kMaxUnixPath ||
               ua->path.find('\0') != std::string::npos) {
      std::abort();
    }
  }
  const std::string owned(text);
  for (bool zero : {false, true}) {
    auto tp = ssx::cli::tunnel::parse_host_port(owned, zero);
    if (!tp) {
      check_refusal(tp.error());
    } else if (!tp->is_unix() && (tp->host.empty() || (tp->port == 0 && !zero))) {
      std::abort();
    }
  }
}

const std::string &config_path() {
  static const std::string path = [] {
    char dir[] = "/tmp/ssx-cli-fuzz-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    return std::string(dir) + "/tunnels.toml";
  }();
  return path;
}

void config(std::string_view text) {
  const std::string &path = config_path();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  for (std::size_t at = 0; at < text.size();) {
    const ssize_t n = ::write(fd, text.data() + at, text.size() - at);
    if (n <= 0) std::abort();
    at += static_cast<std::size_t>(n);
  }
  ::close(fd);
  auto c = ssx::cli::tunnel::load_tunnel_config(path);
  if (!c) {
    const int code = c.error().code;
    if ((code != EINVAL && code != EFBIG) || c.error().message.rfind(path, 0) != 0) std::abort();
    return;
  }
  if (c->tunnels.empty() || c->tunnels.size() > ssx::cli::tunnel::kMaxTunnels) std::abort();
  for (const auto &t : c->tunnels) {
    if (t.name.empty() || t.name.size() > 64) std::abort();  // names are checked (1 to 64)
    if (t.where.count("") == 0) std::abort();
    addresses(t.listen);
    addresses(t.to);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      addresses(rest);
      break;
    case 1:
      config(rest);
      break;
    default:
      addresses(rest);
      config(rest);
      break;
  }
  return 0;
}

// SPDX-License-Identifier: Apache-2.0
// The policy's small pieces: names of enum values, the built-in policy, finding and reading the
// file. Parsing lives in loader.cpp, matching in match.cpp.

#include "policy/policy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/text.hpp"
#include "policy/prescan.hpp"

namespace ssx::policy {
namespace {

constexpr off_t kMaxPolicySize = static_cast<off_t>(kMaxPolicyBytes);

Failure file_failure(int code, const std::string &path, std::string_view why) {
  return fail(code, path + ": " + std::string(why));
}

}  // namespace

std::string_view to_string(Protocol protocol) {
  switch (protocol) {
    case Protocol::tls:
      return "tls";
    case Protocol::local:
      return "local";
    case Protocol::dtls:
      return "dtls";
  }
  return "?";
}

std::string_view to_string(Transport transport) {
  return transport == Transport::udp ? "udp" : "tcp";
}

std::string_view to_string(TlsVersion version) {
  switch (version) {
    case TlsVersion::v1_2:
      return "1.2";
    case TlsVersion::v1_3:
      return "1.3";
  }
  return "?";
}

std::string_view to_string(PeerAuthentication authentication) {
  switch (authentication) {
    case PeerAuthentication::none:
      return "none";
    case PeerAuthentication::optional:
      return "optional";
    case PeerAuthentication::required:
      return "required";
  }
  return "?";
}

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::inbound:
      return "inbound";
    case Direction::outbound:
      return "outbound";
  }
  return "?";
}

Policy builtin_policy() {
  Policy policy;
  policy.source = "(built-in defaults)";
  return policy;
}

std::string policy_path() {
  // secure_getenv: a set-user-ID program must not let its caller pick the policy that secures it.
  const char *env = ::secure_getenv("SSX_POLICY");
  if (env != nullptr && *env != '\0') return env;
  return "/etc/ssx/policy.toml";
}

std::string_view agent_key_name(const Settings &settings) {
  std::string_view key = settings.private_key;
  if (key.substr(0, kAgentKeyPrefix.size()) != kAgentKeyPrefix) return {};
  return key.substr(kAgentKeyPrefix.size());
}

bool has_credentials(const Settings &settings) {
  return !settings.certificate.empty() || !agent_key_name(settings).empty();
}

const KeyEntry *Policy::key(std::string_view name) const {
  for (const KeyEntry &k : keys) {
    if (k.name == name) return &k;
  }
  return nullptr;
}

Result<Policy> load_policy_file(const std::string &path, const LoadOptions &options) {
  // O_NONBLOCK so that a FIFO at the path cannot hang the process; it is rejected below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int code = errno;
    return file_failure(code, path, std::string("cannot open policy file: ") + std::strerror(code));
  }
  struct stat st {};
  std::string text;
  int code = 0;
  std::string why;
  if (::fstat(fd, &st) != 0) {
    code = errno;
    why = std::string("cannot stat policy file: ") + std::strerror(code);
  } else if (S_ISDIR(st.st_mode)) {
    code = EISDIR;
    why = "policy file is a directory";
  } else if (!S_ISREG(st.st_mode)) {
    code = EINVAL;
    why = "policy file is not a regular file";
  } else if ((st.st_mode & S_IWOTH) != 0) {
    // Anyone could rewrite the security of every program that reads it: fail closed.
    code = EACCES;
    why = "policy file is writable by others (mode " + base::file_mode(st.st_mode) +
          "); run: chmod o-w " + base::quote(path);
  } else if (st.st_size > kMaxPolicySize) {
    code = EFBIG;
    why = "policy file is larger than 1 MiB (" + std::to_string(st.st_size) + " bytes)";
  } else {
    // At most st_size bytes are read, so a file that grows after fstat cannot pass the bound.
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        code = errno;
        why = std::string("cannot read policy file: ") + std::strerror(code);
        break;
      }
      if (n == 0) break;  // the file shrank while we read it: parse what is there
      done += static_cast<std::size_t>(n);
    }
    text.resize(done);
  }
  ::close(fd);
  if (code != 0) return file_failure(code, path, why);
  auto policy = parse_policy(text, path, options);
  if (policy) policy->owner = st.st_uid;
  return policy;
}

}  // namespace ssx::policy

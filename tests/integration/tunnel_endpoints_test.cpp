// SPDX-License-Identifier: Apache-2.0
// Where `ssx tunnel`, `ssx listen` and `ssx connect` meet other programs (issue 15, item 6):
// unix:PATH endpoints secured by kernel attestation, stale socket files and bad paths; the PROXY
// protocol v2 header with its TLVs (checked byte for byte, and by haproxy); the certificate
// expiry gauge; several tunnels from one --config file; a --to that moves.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "ossl/inspect.hpp"
#include "ssx/ssx.h"
#include "tunnel_fixture.hpp"

namespace ssx::test {
namespace {

CommandResult ssx_run(std::vector<std::string> args, std::chrono::milliseconds timeout = 20s,
                      const std::string &input = "") {
  args.insert(args.begin(), ssx_cli_binary());
  return run_command(args, timeout, input);
}

sockaddr_un unix_address(const std::string &path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), std::min(path.size(), sizeof a.sun_path - 1));
  return a;
}

Fd unix_connect(const std::string &path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  set_io_timeout(fd.get(), 20s);
  sockaddr_un a = unix_address(path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
    throw std::runtime_error("connect to " + path + ": " + std::strerror(errno));
  }
  return fd;
}

// unix_listener binds a plain AF_UNIX listener at |path|.
Fd unix_listener(const std::string &path) {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a = unix_address(path);
  if (::bind(fd.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 ||
      ::listen(fd.get(), 16) != 0) {
    throw std::runtime_error("listen on " + path + ": " + std::strerror(errno));
  }
  return fd;
}

bool exists(const std::string &path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_socket_file(const std::string &path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// accept_with_timeout accepts one connection and gives it I/O timeouts.
Fd accept_with_timeout(int listener) {
  Fd s(accept_one(listener));
  if (s.get() >= 0) set_io_timeout(s.get(), 20s);
  return s;
}

std::string hex(const std::string &bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string be16(unsigned value) {
  return std::string{static_cast<char>((value >> 8) & 0xff), static_cast<char>(value & 0xff)};
}

std::string tlv(unsigned type, const std::string &value) {
  return std::string(1, static_cast<char>(type)) + be16(static_cast<unsigned>(value.size())) +
         value;
}

// spki_sha256_of returns the SHA-256 of the SubjectPublicKeyInfo of the first certificate in
// |cert_path|, 32 raw bytes, computed here with OpenSSL (independently of ssx).
std::string spki_sha256_of(const std::string &cert_path) {
  FILE *f = std::fopen(cert_path.c_str(), "r");
  if (f == nullptr) return {};
  X509 *cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (cert == nullptr) return {};
  unsigned char *der = nullptr;
  const int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  std::string out(32, '\0');
  unsigned out_len = 0;
  EVP_Digest(der, static_cast<size_t>(len), reinterpret_cast<unsigned char *>(out.data()), &out_len,
             EVP_sha256(), nullptr);
  OPENSSL_free(der);
  X509_free(cert);
  return out;
}

// ProxyHeader is a PROXY v2 header as the tests' own parser reads it (haproxy's
// doc/proxy-protocol.txt, 2.2): every field, and every TLV in order.
struct ProxyHeader {
  std::string signature;
  unsigned version_command = 0;
  unsigned family = 0;
  unsigned length = 0;
  std::string addresses;
  std::vector<std::pair<unsigned, std::string>> tlvs;
  std::string error;  // "" when well formed
};

std::vector<std::pair<unsigned, std::string>> parse_tlvs(const std::string &bytes,
                                                         std::string &error) {
  std::vector<std::pair<unsigned, std::string>> out;
  size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 3) {
      error = "truncated TLV header at " + std::to_string(at);
      return out;
    }
    const unsigned type = static_cast<unsigned char>(bytes[at]);
    const size_t len = (static_cast<size_t>(static_cast<unsigned char>(bytes[at + 1])) << 8) |
                       static_cast<unsigned char>(bytes[at + 2]);
    if (bytes.size() - at - 3 < len) {
      error = "TLV " + std::to_string(type) + " runs past the end";
      return out;
    }
    out.emplace_back(type, bytes.substr(at + 3, len));
    at += 3 + len;
  }
  return out;
}

// read_proxy_header reads exactly one header from |fd|.
ProxyHeader read_proxy_header(int fd) {
  ProxyHeader h;
  const std::string fixed = recv_exactly(fd, 16);
  if (fixed.size() != 16) {
    h.error = "only " + std::to_string(fixed.size()) + " bytes";
    return h;
  }
  h.signature = fixed.substr(0, 12);
  h.version_command = static_cast<unsigned char>(fixed[12]);
  h.family = static_cast<unsigned char>(fixed[13]);
  h.length = (static_cast<unsigned>(static_cast<unsigned char>(fixed[14])) << 8) |
             static_cast<unsigned char>(fixed[15]);
  const std::string rest = recv_exactly(fd, h.length);
  if (rest.size() != h.length) {
    h.error = "body short";
    return h;
  }
  const size_t address_length = h.family == 0x11   ? 12
                                : h.family == 0x21 ? 36
                                : h.family == 0x31 ? 216
                                                   : 0;
  if (rest.size() < address_length) {
    h.error = "addresses short";
    return h;
  }
  h.addresses = rest.substr(0, address_length);
  h.tlvs = parse_tlvs(rest.substr(address_length), h.error);
  return h;
}

const std::string kSignature("\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A", 12);

class TunnelEndpoints : public TunnelTest {
 protected:
  std::unique_ptr<TunnelProcess> tunnel(std::vector<std::string> args, const std::string &log) {
    return std::make_unique<TunnelProcess>(args, dir_.file(log));
  }
  std::string uid_name() const { return "unix:uid=" + std::to_string(::getuid()); }
  // plain_policy is a policy without credentials (AF_UNIX needs none).
  std::string plain_policy() {
    std::string path = dir_.file("plain.toml");
    write_text(path, "version = 1\n");
    return path;
  }
};

// ---------------------------------------------------------------------------------------------
// unix:PATH

TEST_F(TunnelEndpoints, ServerModeOnAUnixPathAttestsThePeerAndRemovesItsSocketOnExit) {
  Fd backend = plain_listener();
  const std::string path = dir_.file("server.sock");
  auto t =
      tunnel({"--policy", server_policy_, "--mode", "server", "--listen", "unix:" + path, "--to",
              "127.0.0.1:" + std::to_string(local_port(backend.get())), "--name", uid_name()},
             "unix-server.log");
  ASSERT_TRUE(is_socket_file(path));

  Fd c = unix_connect(path);
  ASSERT_TRUE(send_all(c.get(), "over unix"));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  Fd s = accept_with_timeout(backend.get());
  ASSERT_GE(s.get(), 0);
  int error = 0;
  EXPECT_EQ(recv_until_eof(s.get(), &error), "over unix");
  EXPECT_EQ(error, 0);
  ASSERT_TRUE(send_all(s.get(), "reply"));
  s.reset();
  EXPECT_EQ(recv_until_eof(c.get(), &error), "reply");
  EXPECT_TRUE(t->wait_for_log("peer=\"" + uid_name() + "\"", 10s)) << t->log();
  EXPECT_TRUE(t->wait_for_log("close=done", 10s)) << t->log();

  t->signal(SIGTERM);
  ASSERT_TRUE(t->wait_exited(10s));
  EXPECT_FALSE(exists(path)) << "the tunnel left its socket file behind";
}

TEST_F(TunnelEndpoints, AUnixPeerWithAnotherUidIsRefused) {
  Fd backend = plain_listener();
  const std::string path = dir_.file("other.sock");
  const std::string other = "unix:uid=" + std::to_string(::getuid() + 4242);
  auto t =
      tunnel({"--policy", server_policy_, "--mode", "server", "--listen", "unix:" + path, "--to",
              "127.0.0.1:" + std::to_string(local_port(backend.get())), "--name", other},
             "unix-refused.log");
  Fd c = unix_connect(path);
  (void)send_all(c.get(), "let me in");
  int error = 0;
  EXPECT_EQ(recv_until_eof(c.get(), &error), "");
  EXPECT_TRUE(t->wait_for_log("close=handshake-failed", 10s)) << t->log();
  pollfd p{backend.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the refused peer reached the backend";
}

// unix client -> client tunnel (unix:PATH) -> TLS over TCP -> server tunnel -> unix backend.
TEST_F(TunnelEndpoints, ClientModeListensOnAUnixPathAndServerModeForwardsToOne) {
  const std::string backend_path = dir_.file("backend.sock");
  const std::string client_path = dir_.file("client.sock");
  Fd backend = unix_listener(backend_path);
  server_ = tunnel({"--policy", server_policy_, "--mode", "server", "--listen", "127.0.0.1:0",
                    "--to", "unix:" + backend_path, "--name", "spiffe://ssx.test/client"},
                   "unix-pair-server.log");
  client_ =
      tunnel({"--policy", client_policy_, "--mode", "client", "--listen", "unix:" + client_path,
              "--to", "127.0.0.1:" + std::to_string(server_->port()), "--name", "localhost"},
             "unix-pair-client.log");
  Fd c = unix_connect(client_path);
  ASSERT_TRUE(send_all(c.get(), "ping"));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  Fd s = accept_with_timeout(backend.get());
  ASSERT_GE(s.get(), 0) << server_->log();
  int error = 0;
  EXPECT_EQ(recv_until_eof(s.get(), &error), "ping");
  ASSERT_TRUE(send_all(s.get(), "pong"));
  s.reset();
  EXPECT_EQ(recv_until_eof(c.get(), &error), "pong");
  EXPECT_TRUE(server_->wait_for_log("peer=\"spiffe://ssx.test/client\"", 10s)) << server_->log();
}

// Both tunnels on one host, the secured hop over AF_UNIX: each side attested by the kernel.
TEST_F(TunnelEndpoints, TwoTunnelsTalkOverAUnixSocketWithAttestedUids) {
  Fd backend = plain_listener();
  const std::string hop = dir_.file("hop.sock");
  server_ =
      tunnel({"--policy", plain_policy(), "--mode", "server", "--listen", "unix:" + hop, "--to",
              "127.0.0.1:" + std::to_string(local_port(backend.get())), "--name", uid_name()},
             "hop-server.log");
  client_ = tunnel({"--policy", plain_policy(), "--mode", "client", "--listen", "127.0.0.1:0",
                    "--to", "unix:" + hop, "--name", uid_name()},
                   "hop-client.log");
  Fd c = plain_connect(client_->port());
  ASSERT_TRUE(send_all(c.get(), "hop"));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  Fd s = accept_with_timeout(backend.get());
  ASSERT_GE(s.get(), 0) << server_->log() << client_->log();
  int error = 0;
  EXPECT_EQ(recv_until_eof(s.get(), &error), "hop");
  ASSERT_TRUE(send_all(s.get(), "back"));
  s.reset();
  EXPECT_EQ(recv_until_eof(c.get(), &error), "back");
  EXPECT_TRUE(server_->wait_for_log("peer=\"" + uid_name() + "\"", 10s)) << server_->log();
  EXPECT_TRUE(client_->wait_for_log("peer=\"" + uid_name() + "\"", 10s)) << client_->log();
}

// A --to unix:PATH is connected afresh for each connection: a service that replaces its socket
// file (rename over the path) gets the next connection.
TEST_F(TunnelEndpoints, ANewSocketAtTheToPathGetsTheNextConnection) {
  const std::string path = dir_.file("moving.sock");
  Fd first = unix_listener(path);
  server_ = tunnel({"--policy", server_policy_, "--mode", "server", "--listen", "127.0.0.1:0",
                    "--to", "unix:" + path, "--name", "spiffe://ssx.test/client"},
                   "moving.log");
  use_test_process_policy();
  auto one_connection = [&](int backend) {
    Fd tls;
    if (ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls) < 0) {
      return std::string("connect failed: ") + ssx_last_error();
    }
    if (!ssx_send_all(tls.get(), "x")) return std::string("send failed");
    Fd s = accept_with_timeout(backend);
    if (s.get() < 0) return std::string("not accepted");
    return recv_exactly(s.get(), 1);
  };
  EXPECT_EQ(one_connection(first.get()), "x");
  const std::string staged = dir_.file("staged.sock");
  Fd second = unix_listener(staged);
  ASSERT_EQ(::rename(staged.c_str(), path.c_str()), 0);
  EXPECT_EQ(one_connection(second.get()), "x");
}

TEST_F(TunnelEndpoints, AStaleSocketFileIsReplacedALiveOneOrAFileIsNot) {
  const std::string path = dir_.file("stale.sock");
  {
    // A socket file whose program is gone: bound, never listening, closed.
    Fd dead(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a = unix_address(path);
    ASSERT_EQ(::bind(dead.get(), reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  }
  ASSERT_TRUE(is_socket_file(path));
  Fd backend = plain_listener();
  const std::string to = "127.0.0.1:" + std::to_string(local_port(backend.get()));
  auto t = tunnel(
      {"--policy", plain_policy(), "--mode", "client", "--listen", "unix:" + path, "--to", to},
      "stale.log");
  // It listens there now.
  Fd c = unix_connect(path);

  // A second tunnel on the same path: in use, exit 1, the first keeps its socket.
  auto second = ssx_run({"tunnel", "--policy", plain_policy(), "--mode", "client", "--listen",
                         "unix:" + path, "--to", to});
  EXPECT_EQ(second.exit_code, 1) << second.output;
  EXPECT_NE(second.output.find("unix:" + path + ": Address already in use"), std::string::npos)
      << second.output;
  EXPECT_TRUE(is_socket_file(path));

  // A regular file at the path is never removed.
  const std::string file = dir_.file("precious.txt");
  write_text(file, "keep me");
  for (const char *command : {"tunnel", "listen"}) {
    std::vector<std::string> args = {command, "--policy", plain_policy()};
    if (std::string(command) == "tunnel") {
      args.insert(args.end(), {"--mode", "client", "--listen", "unix:" + file, "--to", to});
    } else {
      args.push_back("unix:" + file);
    }
    auto r = ssx_run(args);
    EXPECT_EQ(r.exit_code, 1) << command << ": " << r.output;
    EXPECT_NE(r.output.find("exists and is not a socket"), std::string::npos) << r.output;
    EXPECT_EQ(read_text(file), "keep me");
  }
}

TEST_F(TunnelEndpoints, BadUnixPathsAreUsageErrorsThatSayWhy) {
  const std::string too_long = "unix:/" + std::string(120, 'a');
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::string policy = plain_policy();
  const std::vector<Case> cases = {
      {{"tunnel", "--policy", policy, "--mode", "server", "--listen", "unix:", "--to",
        "127.0.0.1:1"},
       "the path after unix: is missing"},
      {{"tunnel", "--policy", policy, "--mode", "server", "--listen", "127.0.0.1:0", "--to",
        too_long},
       "the path is 121 bytes; an AF_UNIX socket path holds at most 107 (sun_path)"},
      {{"tunnel", "--policy", policy, "--mode", "client", "--reuseport", "--listen",
        "unix:" + dir_.file("r.sock"), "--to", "127.0.0.1:1"},
       "--reuseport is for TCP ports"},
      {{"tunnel", "--policy", policy, "--mode", "client", "--listen", "127.0.0.1:0", "--to",
        "unix:/tmp/x", "--metrics", "unix:/tmp/m"},
       "must be a loopback ADDR:PORT, not unix:PATH"},
      {{"connect", "--policy", policy, too_long}, "holds at most 107"},
      {{"listen", "--policy", policy, "unix:"}, "the path after unix: is missing"},
      {{"connect", "--policy", policy, "unix:/tmp/a\tb"}, "control character"},
      // TLS over AF_UNIX (--encrypt) needs a server certificate, as over TCP.
      {{"listen", "--policy", policy, "--encrypt", "unix:" + dir_.file("tls.sock")},
       "no server certificate for unix:"},
  };
  for (const auto &c : cases) {
    auto r = ssx_run(c.args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
  }
}

TEST_F(TunnelEndpoints, ListenAndConnectOverAUnixPath) {
  const std::string policy = plain_policy();
  const std::string path = dir_.file("netcat.sock");
  ChildProcess listener({ssx_cli_binary(), "listen", "--policy", policy, "--once", "--name",
                         uid_name(), "unix:" + path});
  ASSERT_NE(listener.wait_for_line("listening on unix:" + path, 10s), "") << listener.output();
  auto r = ssx_run({"connect", "--policy", policy, "--json", "unix:" + path}, 20s, "hello\n");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"protocol\":\"local\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"principal\":\"" + uid_name() + "\""), std::string::npos) << r.output;
  EXPECT_TRUE(listener.wait_for_output("hello\n", 10s)) << listener.output();
  // --once: the listener exits, and takes its socket file with it.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (exists(path) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_FALSE(exists(path));

  // Nobody listens: one wording for the failure, exit 1.
  auto refused = ssx_run({"connect", "--policy", policy, "unix:" + path});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("cannot connect to unix:" + path), std::string::npos)
      << refused.output;
}

// ---------------------------------------------------------------------------------------------
// PROXY protocol v2

TEST_F(TunnelEndpoints, ProxyV2HeaderCarriesTheClientAndEveryTlvByteForByte) {
  use_test_process_policy();
  Fd backend = plain_listener();
  server_ = start_server(local_port(backend.get()), {"--proxy-protocol", "v2"});
  Fd tls;
  ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls), 0)
      << ssx_last_error();
  ASSERT_TRUE(ssx_send_all(tls.get(), "payload"));
  sockaddr_in me{};
  socklen_t me_len = sizeof me;
  ASSERT_EQ(::getsockname(tls.get(), reinterpret_cast<sockaddr *>(&me), &me_len), 0);
  ssx_security_info *info = nullptr;
  ASSERT_EQ(ssx_query_socket_security(tls.get(), nullptr, 0, &info), 0);
  const std::string version = info->version;
  const std::string cipher = info->cipher;
  ssx_free_security_info(info);

  Fd s = accept_with_timeout(backend.get());
  ASSERT_GE(s.get(), 0);
  ProxyHeader h = read_proxy_header(s.get());
  ASSERT_EQ(h.error, "");
  EXPECT_EQ(h.signature, kSignature);
  EXPECT_EQ(h.version_command, 0x21U);  // version 2, PROXY
  EXPECT_EQ(h.family, 0x11U);           // TCP over IPv4
  // Source: this client as the tunnel saw it; destination: the tunnel's listening address.
  const std::string addresses = std::string("\x7f\x00\x00\x01\x7f\x00\x00\x01", 8) +
                                be16(ntohs(me.sin_port)) + be16(server_->port());
  EXPECT_EQ(hex(h.addresses), hex(addresses));

  // Every TLV, in order, and nothing else.
  const std::string ssl_value = std::string("\x07", 1) +      // SSL | CERT_CONN | CERT_SESS
                                std::string("\0\0\0\0", 4) +  // verify: 0, the certificate verified
                                tlv(0x21, version) +          // PP2_SUBTYPE_SSL_VERSION
                                tlv(0x23, cipher) +           // PP2_SUBTYPE_SSL_CIPHER
                                tlv(0x22, "client");          // PP2_SUBTYPE_SSL_CN
  const std::string spki = spki_sha256_of(client_creds_.cert);
  ASSERT_EQ(spki.size(), 32U);
  const std::vector<std::pair<unsigned, std::string>> expected = {
      {0x20, ssl_value},
      {0xE0, "spiffe://ssx.test/client"},  // the peer's principal
      {0xE1, spki},                        // SHA-256 of its SubjectPublicKeyInfo, raw
      {0xE2, "defaults"},                  // the policy rule that applied
  };
  ASSERT_EQ(h.tlvs.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(h.tlvs[i].first, expected[i].first) << "TLV " << i;
    EXPECT_EQ(hex(h.tlvs[i].second), hex(expected[i].second)) << "TLV " << i;
  }
  // The SSL TLV's sub-TLVs parse on their own too.
  std::string sub_error;
  auto sub = parse_tlvs(h.tlvs[0].second.substr(5), sub_error);
  EXPECT_EQ(sub_error, "");
  ASSERT_EQ(sub.size(), 3U);
  EXPECT_EQ(sub[0].second, version);
  EXPECT_EQ(version, "TLSv1.3");
  // The length field covers exactly addresses and TLVs.
  size_t tlv_bytes = 0;
  for (const auto &[type, value] : h.tlvs) tlv_bytes += 3 + value.size();
  EXPECT_EQ(h.length, 12 + tlv_bytes);

  // Then the client's bytes, untouched; the log counts only those.
  EXPECT_EQ(recv_exactly(s.get(), 7), "payload");
  ASSERT_EQ(ssx_shutdown(tls.get(), SHUT_WR), 0);
  int error = 0;
  EXPECT_EQ(recv_until_eof(s.get(), &error), "");
  s.reset();
  tls.reset();
  EXPECT_TRUE(server_->wait_for_log("in=7 ", 10s)) << server_->log();
}

TEST_F(TunnelEndpoints, ProxyV2OverAUnixListenerSaysUnixAndThePeerUid) {
  Fd backend = plain_listener();
  const std::string path = dir_.file("proxy.sock");
  auto t = tunnel({"--policy", plain_policy(), "--mode", "server", "--listen", "unix:" + path,
                   "--to", "127.0.0.1:" + std::to_string(local_port(backend.get())),
                   "--proxy-protocol", "v2", "--name", uid_name()},
                  "proxy-unix.log");
  Fd c = unix_connect(path);
  ASSERT_TRUE(send_all(c.get(), "u"));
  Fd s = accept_with_timeout(backend.get());
  ASSERT_GE(s.get(), 0);
  ProxyHeader h = read_proxy_header(s.get());
  ASSERT_EQ(h.error, "");
  EXPECT_EQ(h.family, 0x31U);     // UNIX stream
  std::string source(108, '\0');  // an unnamed client
  std::string destination(108, '\0');
  destination.replace(0, path.size(), path);
  EXPECT_EQ(hex(h.addresses), hex(source + destination));
  // No TLS: no SSL TLV, no SPKI; the principal is the kernel-attested uid.
  const std::vector<std::pair<unsigned, std::string>> expected = {{0xE0, uid_name()},
                                                                  {0xE2, "defaults"}};
  EXPECT_EQ(h.tlvs, expected);
  EXPECT_EQ(recv_exactly(s.get(), 1), "u");
}

TEST_F(TunnelEndpoints, HaproxyAcceptsTheHeaderAndSeesTheClientsAddress) {
  if (::access("/usr/sbin/haproxy", X_OK) != 0) GTEST_SKIP() << "haproxy is not installed";
  // A port for haproxy: the kernel picks one, which is released for haproxy to bind.
  std::uint16_t port = 0;
  {
    Fd probe = plain_listener();
    port = local_port(probe.get());
  }
  const std::string config = dir_.file("haproxy.cfg");
  write_text(config,
             "defaults\n  mode http\n  timeout connect 5s\n  timeout client 10s\n"
             "  timeout server 10s\n"
             "frontend fe\n  bind 127.0.0.1:" +
                 std::to_string(port) +
                 " accept-proxy\n"
                 "  http-request return status 200 content-type text/plain lf-string "
                 "\"src=%[src] src_port=%[src_port] dst=%[dst] dst_port=%[dst_port]\\n\"\n");
  ChildProcess haproxy({"/usr/sbin/haproxy", "-db", "-f", config});
  // Wait (bounded) until haproxy listens.
  bool up = false;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       !up && std::chrono::steady_clock::now() < deadline;) {
    Fd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a = loopback_address(port);
    up = ::connect(probe.get(), reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    if (!up) std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(up) << haproxy.output();

  use_test_process_policy();
  server_ = start_server(port, {"--proxy-protocol", "v2"});
  Fd tls;
  ASSERT_GE(ssx_client_connect(server_->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls), 0)
      << ssx_last_error();
  sockaddr_in me{};
  socklen_t me_len = sizeof me;
  ASSERT_EQ(::getsockname(tls.get(), reinterpret_cast<sockaddr *>(&me), &me_len), 0);
  ASSERT_TRUE(ssx_send_all(tls.get(), "GET / HTTP/1.0\r\nHost: ssx.test\r\n\r\n"));
  int error = 0;
  const std::string response = ssx_recv_until_eof(tls.get(), &error);
  EXPECT_NE(response.find("200"), std::string::npos) << response << haproxy.output();
  // haproxy reports the client behind the tunnel, not the tunnel's own connection.
  EXPECT_NE(response.find("src=127.0.0.1 src_port=" + std::to_string(ntohs(me.sin_port)) +
                          " dst=127.0.0.1 dst_port=" + std::to_string(server_->port())),
            std::string::npos)
      << response;
}

TEST_F(TunnelEndpoints, ProxyProtocolWithABadValueOrInClientModeIsAUsageError) {
  const std::string policy = plain_policy();
  struct Case {
    std::vector<std::string> extra;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--mode", "server", "--proxy-protocol", "v1"}, "\"v1\" is not a PROXY protocol version"},
      {{"--mode", "server", "--proxy-protocol", "V2"}, "\"V2\" is not a PROXY protocol version"},
      {{"--mode", "server", "--proxy-protocol", ""}, "--proxy-protocol"},
      {{"--mode", "client", "--proxy-protocol", "v2"}, "only in server mode"},
  };
  for (const auto &c : cases) {
    std::vector<std::string> args = {"tunnel",      "--policy", policy,       "--listen",
                                     "127.0.0.1:0", "--to",     "127.0.0.1:1"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto r = ssx_run(args);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << r.output;
  }
}

// ---------------------------------------------------------------------------------------------
// Certificate expiry

TEST_F(TunnelEndpoints, CertificateExpiryGaugeForEachCertificateFollowsReloads) {
  Fd backend = plain_listener();
  server_ = start_server(local_port(backend.get()), {"--metrics", "127.0.0.1:0"});
  auto facts = ossl::inspect_certificate_file(server_creds_.cert);
  ASSERT_TRUE(facts.has_value());
  const std::string series = "ssx_certificate_expiry_seconds{rule=\"defaults\",subject=\"" +
                             facts->subject + "\",file=\"" + server_creds_.cert + "\"}";
  const std::string scrape = http_get(server_->metrics_port(), "/metrics");
  EXPECT_NE(scrape.find("# TYPE ssx_certificate_expiry_seconds gauge"), std::string::npos);
  const long long expected = static_cast<long long>(facts->not_after - std::time(nullptr));
  const long long value = metric(scrape, series);
  EXPECT_GT(value, 0) << scrape;
  EXPECT_NEAR(static_cast<double>(value), static_cast<double>(expected), 60.0) << scrape;

  // A new certificate (another subject, ten days left) and a rule of its own; SIGHUP.
  pki::LeafRequest request = TestPki::server_request();
  request.common_name = "reloaded.ssx.test";
  request.validity.not_after_s = 10LL * 24 * 3600;
  CredentialFiles renewed = pki_.issue("renewed", request);
  write_text(server_policy_,
             "version = 1\n[defaults]\ntrust_bundle = " + toml_quote(pki_.ca_cert()) +
                 "\ncertificate = " + toml_quote(renewed.cert) +
                 "\nprivate_key = " + toml_quote(renewed.key) +
                 "\npeer_authentication = \"required\"\n[[rule]]\nname = \"old\"\nport = 1\n"
                 "certificate = " +
                 toml_quote(server_creds_.cert) +
                 "\nprivate_key = " + toml_quote(server_creds_.key) + "\n");
  server_->signal(SIGHUP);
  ASSERT_TRUE(server_->wait_for_log("policy reloaded", 10s)) << server_->log();
  const std::string after = http_get(server_->metrics_port(), "/metrics");
  auto renewed_facts = ossl::inspect_certificate_file(renewed.cert);
  ASSERT_TRUE(renewed_facts.has_value());
  const std::string renewed_series = "ssx_certificate_expiry_seconds{rule=\"defaults\",subject=\"" +
                                     renewed_facts->subject + "\",file=\"" + renewed.cert + "\"}";
  EXPECT_NE(renewed_facts->subject.find("CN=reloaded.ssx.test"), std::string::npos);
  EXPECT_NEAR(static_cast<double>(metric(after, renewed_series)), 10.0 * 24 * 3600, 120.0) << after;
  // The old certificate is now named by rule "old", no longer by [defaults].
  EXPECT_EQ(metric(after, series), -1) << after;
  const std::string old_series = "ssx_certificate_expiry_seconds{rule=\"old\",subject=\"" +
                                 facts->subject + "\",file=\"" + server_creds_.cert + "\"}";
  EXPECT_NEAR(static_cast<double>(metric(after, old_series)), static_cast<double>(expected), 60.0)
      << after;
}

// ---------------------------------------------------------------------------------------------
// A --to that names a host

// ScopedEnv sets an environment variable for the children a test starts.
class ScopedEnv {
 public:
  ScopedEnv(const char *name, const std::string &value) : name_(name) {
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv &) = delete;
  ScopedEnv &operator=(const ScopedEnv &) = delete;

 private:
  const char *name_;
};

TEST_F(TunnelEndpoints, ToIsLookedUpAgainAndSlowLookupsNeverHoldConnectionsUp) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "LD_PRELOAD of the test resolver does not mix with sanitizer runtimes";
#endif
  // Built next to this test program: BIN/tests, where the ssx command is BIN/tools/ssx/ssx.
  std::string shim = ssx_cli_binary();
  shim = shim.substr(0, shim.rfind("tools/ssx/ssx")) + "tests/libssx_test_resolver_shim.so";
  ASSERT_TRUE(exists(shim)) << shim;
  // Two backends on one port, at 127.0.0.1 and 127.0.0.2 (both loopback on Linux).
  Fd a = plain_listener();
  const std::uint16_t port = local_port(a.get());
  Fd b(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in b_address = loopback_address(port);
  b_address.sin_addr.s_addr = htonl(0x7f000002);
  ASSERT_EQ(::bind(b.get(), reinterpret_cast<sockaddr *>(&b_address), sizeof b_address), 0)
      << std::strerror(errno);
  ASSERT_EQ(::listen(b.get(), 16), 0);

  const std::string answer = dir_.file("resolve.txt");
  write_text(answer, "127.0.0.1\n");
  std::unique_ptr<TunnelProcess> t;
  {
    ScopedEnv preload("LD_PRELOAD", shim);
    ScopedEnv file("SSX_TEST_RESOLVE_FILE", answer);
    t = tunnel({"--policy", server_policy_, "--mode", "server", "--listen", "127.0.0.1:0", "--to",
                "backend.ssx-test:" + std::to_string(port), "--name", "spiffe://ssx.test/client",
                "--resolve-interval", "0.1"},
               "resolve.log");
  }
  use_test_process_policy();
  // one_connection sends a byte through the tunnel; which backend took it, and how long it took.
  auto one_connection = [&](std::chrono::milliseconds *took = nullptr) -> std::string {
    const auto start = std::chrono::steady_clock::now();
    Fd tls;
    if (ssx_client_connect(t->port(), {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls) < 0) {
      return std::string("connect failed: ") + ssx_last_error();
    }
    if (!ssx_send_all(tls.get(), "x")) return "send failed";
    pollfd p[2] = {{a.get(), POLLIN, 0}, {b.get(), POLLIN, 0}};
    if (::poll(p, 2, 10000) <= 0) return "no backend got it";
    Fd s = accept_with_timeout((p[0].revents & POLLIN) != 0 ? a.get() : b.get());
    const std::string got = recv_exactly(s.get(), 1);
    if (took != nullptr) {
      *took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
    }
    if (got != "x") return "lost the byte";
    return (p[0].revents & POLLIN) != 0 ? "127.0.0.1" : "127.0.0.2";
  };
  EXPECT_EQ(one_connection(), "127.0.0.1") << t->log();

  // The name moves: the tunnel follows it, and says so.
  write_text(answer, "127.0.0.2\n");
  ASSERT_TRUE(t->wait_for_log("now resolves to 127.0.0.2:" + std::to_string(port), 10s))
      << t->log();
  EXPECT_EQ(one_connection(), "127.0.0.2") << t->log();

  // Lookups that fail keep the last good address.
  write_text(answer, "fail\n");
  ASSERT_TRUE(t->wait_for_log("lookup failed, new connections keep using 127.0.0.2", 10s))
      << t->log();
  EXPECT_EQ(one_connection(), "127.0.0.2") << t->log();

  // A lookup that takes 3 s runs beside the workers: connections meanwhile are not held up.
  write_text(answer, "127.0.0.1 delay=3000\n");
  std::chrono::milliseconds took{};
  EXPECT_EQ(one_connection(&took), "127.0.0.2") << t->log();
  EXPECT_LT(took.count(), 1500) << "a connection waited for a lookup";
  ASSERT_TRUE(t->wait_for_log("now resolves to 127.0.0.1:" + std::to_string(port), 15s))
      << t->log();
  EXPECT_EQ(one_connection(), "127.0.0.1") << t->log();
}

// ---------------------------------------------------------------------------------------------
// --config

class TunnelConfigTest : public TunnelEndpoints {
 protected:
  std::string write_config(const std::string &toml) {
    std::string path = dir_.file("tunnels.toml");
    write_text(path, toml);
    return path;
  }
};

TEST_F(TunnelConfigTest, TwoTunnelsRunInOneProcessEachWithItsOwnNames) {
  Fd backend_a = plain_listener();
  Fd backend_b = plain_listener();
  const std::string config = write_config(
      "policy = " + toml_quote(server_policy_) +
      "\n\n[tunnel.alpha]\nmode = \"server\"\nlisten = \"127.0.0.1:0\"\nto = \"127.0.0.1:" +
      std::to_string(local_port(backend_a.get())) +
      "\"\nname = \"spiffe://ssx.test/client\"\n\n[tunnel.beta]\nmode = \"server\"\n"
      "listen = \"127.0.0.1:0\"\nto = \"127.0.0.1:" +
      std::to_string(local_port(backend_b.get())) +
      "\"\nname = [\"spiffe://ssx.test/someone-else\"]\nproxy_protocol = \"v2\"\n");
  auto t = tunnel({"--config", config, "--workers", "1", "--grace", "1"}, "config.log");
  const std::string alpha = t->wait_for_line("tunnel \"alpha\"", 5s);
  const std::string beta = t->wait_for_line("tunnel \"beta\"", 5s);
  ASSERT_NE(alpha, "");
  ASSERT_NE(beta, "");
  auto port_of = [](const std::string &line) {
    const size_t at = line.find("127.0.0.1:");
    return static_cast<std::uint16_t>(std::atoi(line.c_str() + at + 10));
  };
  const std::uint16_t port_a = port_of(alpha);
  const std::uint16_t port_b = port_of(beta);
  ASSERT_NE(port_a, 0);
  ASSERT_NE(port_b, 0);
  ASSERT_NE(port_a, port_b);

  use_test_process_policy();
  // alpha: our certificate's name is the one it requires; forwarded to backend A, no header.
  Fd tls;
  ASSERT_GE(ssx_client_connect(port_a, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &tls), 0)
      << ssx_last_error();
  ASSERT_TRUE(ssx_send_all(tls.get(), "to-alpha"));
  Fd s = accept_with_timeout(backend_a.get());
  ASSERT_GE(s.get(), 0);
  EXPECT_EQ(recv_exactly(s.get(), 8), "to-alpha");
  ASSERT_EQ(ssx_shutdown(tls.get(), SHUT_WR), 0);
  int eof_error = 0;
  EXPECT_EQ(recv_until_eof(s.get(), &eof_error), "");
  s.reset();
  EXPECT_EQ(ssx_recv_until_eof(tls.get(), &eof_error), "");
  tls.reset();
  EXPECT_TRUE(t->wait_for_log("tunnel=alpha client=127.0.0.1:", 10s)) << t->log();

  // beta: requires another name, so this client is refused and backend B sees nothing.
  Fd refused;
  const int rc = ssx_client_connect(port_b, {"localhost"}, SSX_GUARANTEE_ENCRYPTION, &refused);
  if (rc >= 0) {
    int error = 0;
    (void)ssx_send_all(refused.get(), "to-beta");
    EXPECT_EQ(ssx_recv_until_eof(refused.get(), &error), "");
    EXPECT_NE(error, 0);
  }
  EXPECT_TRUE(t->wait_for_log("tunnel=beta client=", 10s)) << t->log();
  EXPECT_NE(lines_without(t->log(), "tunnel=alpha").find("close=handshake-failed"),
            std::string::npos)
      << t->log();
  pollfd p{backend_b.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);

  // One SIGTERM stops both (alpha's connection is still open: closed after --grace).
  t->signal(SIGTERM);
  EXPECT_TRUE(t->wait_exited(15s)) << t->log();
  EXPECT_TRUE(t->wait_for_log("stopped", 5s)) << t->log();
}

TEST_F(TunnelConfigTest, ConfigErrorsSayFileLineAndWhat) {
  struct Case {
    std::string toml;
    std::string expected;
  };
  const std::string policy = toml_quote(server_policy_);
  const std::string good = "mode = \"server\"\nlisten = \"127.0.0.1:0\"\nto = \"127.0.0.1:1\"\n";
  const std::vector<Case> cases = {
      {"[tunnel.a]\n" + good + "colour = \"red\"\n", ":5:1: tunnel \"a\": unknown key \"colour\""},
      {"[tunnel.a]\nmode = \"server\"\nlisten = \"127.0.0.1:0\"\n", ":1:9: tunnel \"a\" has no to"},
      {"[tunnel.a]\nmode = \"server\"\nlisten = \"127.0.0.1\"\nto = \"127.0.0.1:1\"\n",
       ":3:10: tunnel \"a\": listen: invalid address \"127.0.0.1\": expected HOST:PORT"},
      {"[tunnel.a]\nmode = \"sideways\"\nlisten = \"127.0.0.1:0\"\nto = \"127.0.0.1:1\"\n",
       ":2:8: tunnel \"a\": mode: \"sideways\" is not a mode"},
      {"[tunnel.a]\n" + good + "proxy_protocol = \"v1\"\n",
       ":5:18: tunnel \"a\": proxy_protocol: \"v1\" is not a PROXY protocol version"},
      {"[tunnel.a]\n" + good + "name = 7\n",
       ":5:8: tunnel \"a\": name must be a string or an array"},
      {"policy = " + policy + "\n[tunnel.a]\n" + good + "policy = \"/etc/other.toml\"\n",
       "differs from"},
      {"[tunnel.a]\nmode = \"server\"\nlisten = \n", ":3:"},
      {"[tunnel.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s]\n", ":1:"},
      {"policy = " + policy + "\n", "no tunnel"},
      {"speed = 3\n", ":1:1: unknown key \"speed\""},
      {"[tunnel.\"a b\"]\n" + good, ":1:9: a tunnel's name is 1 to 64 letters"},
  };
  for (const auto &c : cases) {
    const std::string path = write_config(c.toml);
    auto r = ssx_run({"tunnel", "--config", path});
    EXPECT_EQ(r.exit_code, 2) << c.toml << "\n" << r.output;
    EXPECT_NE(r.output.find(c.expected), std::string::npos) << c.toml << "\n" << r.output;
    if (c.expected.rfind(":", 0) == 0) {
      EXPECT_NE(r.output.find(path + c.expected), std::string::npos) << r.output;
    }
  }
  // --config excludes the options that describe one tunnel.
  auto both = ssx_run({"tunnel", "--config", dir_.file("tunnels.toml"), "--mode", "server"});
  EXPECT_EQ(both.exit_code, 2) << both.output;
  auto missing = ssx_run({"tunnel", "--config", dir_.file("absent.toml")});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("absent.toml: cannot open tunnel configuration"), std::string::npos)
      << missing.output;
}

}  // namespace
}  // namespace ssx::test

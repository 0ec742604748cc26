// SPDX-License-Identifier: Apache-2.0
// bench/bench_pki.cpp — makes the benchmark's credentials and policy at run time, so that no
// private key is ever committed: a CA ("ssx bench CA") and a server leaf for "localhost", both
// ECDSA P-256, and the ssx policy that pins what the raw OpenSSL baseline also uses.
//
//   ssx_bench_pki DIR     writes DIR/ca.crt, DIR/server.crt (the leaf alone), DIR/server.key
//                         (0600), DIR/policy.toml and DIR/policy-memory.toml. DIR must exist (the
//                         driver makes it with mkdtemp).
//
// server.crt holds the leaf alone so that every implementation sends the same bytes: ssx never
// sends a self-signed root, while raw OpenSSL, stunnel and haproxy send whatever the file holds.
// With a leaf + CA file the others would send (and their clients decode) one certificate more.

#include <cstdio>
#include <string>

#include "pki/pki.hpp"

namespace {

std::string quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    auto ca = ssx::pki::Authority::create("ssx bench CA", ssx::pki::KeyType::ec_p256).value();
    ssx::pki::LeafRequest leaf;
    leaf.common_name = "localhost";
    leaf.dns = {"localhost"};
    leaf.ips = {"127.0.0.1"};
    leaf.key = ssx::pki::KeyType::ec_p256;
    leaf.client = false;
    leaf.server = true;
    auto server = ca.issue(leaf).value();
    ssx::pki::write_file(dir + "/ca.crt", ca.cert_pem(), 0644).value();
    ssx::pki::write_file(dir + "/server.crt", server.cert_pem, 0644).value();
    ssx::pki::write_file(dir + "/server.key", server.key_pem, 0600).value();
    // One policy for every workload. Tickets stay on (the default): W3 gets full handshakes
    // because its client never reads, so never processes a ticket; W4 reads once and resumes.
    std::string policy = "version = 1\n\n[defaults]\n";
    policy += "trust_bundle = " + quote(dir + "/ca.crt") + "\n";
    policy += "cipher_suites = [\"TLS_AES_128_GCM_SHA256\"]\n";
    policy += "groups = [\"X25519\"]\n";
    policy += "session_tickets = true\n";
    policy += "handshake_timeout_ms = 10000\n\n";
    policy += "[[rule]]\nname = \"bench-server\"\ndirection = \"inbound\"\n";
    policy += "certificate = " + quote(dir + "/server.crt") + "\n";
    policy += "private_key = " + quote(dir + "/server.key") + "\n";
    ssx::pki::write_file(dir + "/policy.toml", policy, 0644).value();
    // W6 (memory) and W3's exchange variant: the client keeps no session, as raw OpenSSL's
    // clients there do not; both still receive the server's tickets.
    policy += "\n[[rule]]\nname = \"bench-client-no-resumption\"\ndirection = \"outbound\"\n";
    policy += "session_tickets = false\n";
    ssx::pki::write_file(dir + "/policy-memory.toml", policy, 0644).value();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}

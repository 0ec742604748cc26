// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_demo.cpp — `ssx demo`: a mutually authenticated TLS connection on loopback, and
// what each side's query reported. What `make demo` runs.
//
// Self-contained: it makes a throwaway CA, a server certificate (DNS:localhost) and a client
// certificate (a SPIFFE ID) in a private temporary directory, writes a policy that maps the
// client's SPIFFE ID to the user running the demo, and loads that policy with ssx_load_policy, so
// /etc/ssx/policy.toml and $SSX_POLICY play no part. The directory is removed on every way out.

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "command.hpp"
#include "common/security_json.hpp"
#include "pki/pki.hpp"
#include "ssx/ssx.hpp"

namespace ssx::cli {
namespace {

constexpr const char *kClientId = "spiffe://demo.ssx.example/client";
constexpr int kIoTimeoutSeconds = 5;

// DemoDir is a private (0700) temporary directory, removed with everything in it on destruction.
class DemoDir {
 public:
  DemoDir() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ssx-demo-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      failure("cannot create a temporary directory " + pattern + ": " + std::strerror(errno));
    }
    path_ = pattern;
  }
  ~DemoDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  DemoDir(const DemoDir &) = delete;
  DemoDir &operator=(const DemoDir &) = delete;

  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct Account {
  std::string name;  // "" when the uid has no name
  uid_t uid;
};

Account current_account() {
  Account a{"", geteuid()};
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd *found = nullptr;
  if (getpwuid_r(a.uid, &pw, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    a.name = pw.pw_name;
  }
  // The policy accepts names of A-Z a-z 0-9 . _ - (and a final $); anything else goes by uid.
  const bool plain =
      !a.name.empty() && a.name[0] != '-' && std::all_of(a.name.begin(), a.name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
               c == '$';
      });
  if (!plain) a.name.clear();
  return a;
}

std::string group_name(gid_t gid) {
  std::vector<char> buffer(16384);
  group gr{};
  group *found = nullptr;
  if (getgrgid_r(gid, &gr, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return gr.gr_name;
  }
  return std::to_string(gid);
}

// make_credentials writes ca.crt, server.crt/.key and client.crt/.key into |dir|.
void make_credentials(const DemoDir &dir) {
  pki::Authority ca = check(pki::Authority::create("ssx demo CA"));
  check(pki::write_file(dir.file("ca.crt"), ca.cert_pem(), 0644));

  pki::LeafRequest server;
  server.common_name = "localhost";
  server.dns = {"localhost"};
  server.ips = {"127.0.0.1"};
  server.client = false;
  pki::Credential s = check(ca.issue(server));
  check(pki::write_file(dir.file("server.key"), s.key_pem, 0600));
  check(pki::write_file(dir.file("server.crt"), s.chain_pem, 0644));

  pki::LeafRequest client;
  client.common_name = "demo client";
  client.uris = {kClientId};
  client.server = false;
  pki::Credential c = check(ca.issue(client));
  check(pki::write_file(dir.file("client.key"), c.key_pem, 0600));
  check(pki::write_file(dir.file("client.crt"), c.chain_pem, 0644));
}

std::string policy_text(const Account &account) {
  std::string text =
      "# Written by `ssx demo`, removed when it exits. Relative paths are relative to this file.\n"
      "version = 1\n"
      "\n"
      "[defaults]\n"
      "trust_bundle = \"ca.crt\"\n"
      "handshake_timeout_ms = 5000\n"
      "\n"
      "[[rule]]\n"
      "name = \"demo-server\"\n"
      "direction = \"inbound\"\n"
      "certificate = \"server.crt\"\n"
      "private_key = \"server.key\"\n"
      "peer_authentication = \"required\"\n"
      "\n"
      "[[rule]]\n"
      "name = \"demo-client\"\n"
      "direction = \"outbound\"\n"
      "certificate = \"client.crt\"\n"
      "private_key = \"client.key\"\n"
      "\n"
      "[[identity]]\n"
      "peer = \"" +
      std::string(kClientId) + "\"\n";
  if (account.name.empty()) {
    text += "uid = " + std::to_string(account.uid) + "\n";
  } else {
    text += "user = \"" + account.name + "\"\n";
  }
  return text;
}

void set_timeouts(int fd) {
  timeval tv{kIoTimeoutSeconds, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

void send_line(Socket &socket, const std::string &line) {
  const std::string text = line + "\n";
  check(socket.send(std::as_bytes(std::span(text))));
}

// receive_line reads up to a newline; "" at the end of the stream.
std::string receive_line(Socket &socket) {
  std::string line;
  std::byte c{};
  while (true) {
    std::size_t n = check(socket.recv(std::span(&c, 1)));
    if (n == 0 || c == std::byte{'\n'}) return line;
    line.push_back(static_cast<char>(c));
    if (line.size() > 4096) failure("demo: line too long");
  }
}

// serve is the demo's server: it greets the client by its principal and mapped account, then
// echoes every line until the client's close_notify.
void serve(Socket &client, SecurityInfo &info) {
  set_timeouts(client.native_handle());
  info = check(client.query_security());
  std::string who = info.peer_principal;
  if (info.peer_account) {
    who += " (local user " +
           (info.peer_account->user.empty() ? "uid " + std::to_string(info.peer_account->uid)
                                            : info.peer_account->user) +
           ")";
  }
  for (std::string line = receive_line(client); !line.empty(); line = receive_line(client)) {
    send_line(client, line == "hello" ? "hello, " + who : "echo: " + line);
  }
  check(client.shutdown());
}

// Cell is one table cell: one or more lines.
using Cell = std::vector<std::string>;

struct Row {
  std::string label;
  Cell client, server;
};

std::string or_none(const std::string &s) {
  return s.empty() ? "(none)" : s;
}

Cell account_cell(const SecurityInfo &info) {
  if (!info.peer_account) return {"(not mapped)"};
  const PeerAccount &a = *info.peer_account;
  Cell cell{(a.user.empty() ? "(no name)" : a.user) + " (uid " + std::to_string(a.uid) + ", gid " +
            std::to_string(a.gid) + ")"};
  std::string groups;
  for (gid_t g : a.groups) {
    groups += (groups.empty() ? "" : ", ") + group_name(g) + "(" + std::to_string(g) + ")";
  }
  cell.push_back("groups " + (groups.empty() ? std::string("(none)") : groups));
  return cell;
}

Cell handshake_cell(const SecurityInfo &info) {
  char text[32];
  (void)std::snprintf(text, sizeof text, "%.2f ms", handshake_ms(info));
  return {text};
}

std::vector<Row> rows(const SecurityInfo &c, const SecurityInfo &s) {
  auto upper = [](std::string text) {
    for (char &ch : text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return text;
  };
  auto spki = [](const SecurityInfo &i) {
    return i.peer_spki_sha256.empty() ? std::string("(none)")
                                      : "sha256:" + i.peer_spki_sha256.substr(0, 16) + "...";
  };
  Cell client_names = c.peer_names.empty() ? Cell{"(none)"} : Cell(c.peer_names);
  Cell server_names = s.peer_names.empty() ? Cell{"(none)"} : Cell(s.peer_names);
  Cell client_flags = flag_words(c.flags);
  Cell server_flags = flag_words(s.flags);
  return {
      {"protocol", {upper(protocol_name(c.protocol))}, {upper(protocol_name(s.protocol))}},
      {"version", {or_none(c.version)}, {or_none(s.version)}},
      {"cipher", {or_none(c.cipher)}, {or_none(s.cipher)}},
      {"key exchange group", {or_none(c.group)}, {or_none(s.group)}},
      {"policy rule", {or_none(c.policy_rule)}, {or_none(s.policy_rule)}},
      {"own principal", {or_none(c.local_principal)}, {or_none(s.local_principal)}},
      {"peer principal", {or_none(c.peer_principal)}, {or_none(s.peer_principal)}},
      {"peer names", client_names, server_names},
      {"peer key", {spki(c)}, {spki(s)}},
      {"peer's local account", account_cell(c), account_cell(s)},
      {"flags", client_flags.empty() ? Cell{"(none)"} : client_flags,
       server_flags.empty() ? Cell{"(none)"} : server_flags},
      {"handshake time", handshake_cell(c), handshake_cell(s)},
  };
}

void print_table(const std::vector<Row> &table) {
  size_t label_width = 0, client_width = std::strlen("client's query");
  for (const Row &r : table) {
    label_width = std::max(label_width, r.label.size());
    for (const auto &line : r.client) client_width = std::max(client_width, line.size());
  }
  label_width += 3;
  client_width += 3;
  std::printf("  %-*s%-*s%s\n", static_cast<int>(label_width), "", static_cast<int>(client_width),
              "client's query", "server's query");
  for (const Row &r : table) {
    const size_t height = std::max(r.client.size(), r.server.size());
    for (size_t i = 0; i < height; ++i) {
      const std::string label = i == 0 ? r.label : "";
      const std::string left = i < r.client.size() ? r.client[i] : "";
      const std::string right = i < r.server.size() ? r.server[i] : "";
      std::string line = "  ";
      line += label + std::string(label_width - label.size(), ' ');
      line += left + std::string(client_width - left.size(), ' ');
      line += right;
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
    }
  }
}

void run_demo() {
  const auto started = std::chrono::steady_clock::now();
  DemoDir dir;
  make_credentials(dir);
  const Account account = current_account();
  check(pki::write_file(dir.file("policy.toml"), policy_text(account), 0600));
  // The demo's own policy, loaded before any socket is secured: /etc/ssx/policy.toml and
  // $SSX_POLICY are never read.
  if (ssx_load_policy(dir.file("policy.toml").c_str()) != 0) {
    failure(std::string("cannot load the demo's policy: ") + ssx_last_error());
  }

  SecuritySettings server_settings;
  server_settings.guarantee_encryption = true;
  Listener listener = check(Listener::bind("127.0.0.1", 0, server_settings));
  const std::uint16_t port = listener.port();

  SecurityInfo server_info;
  std::string server_error;
  std::thread server([&] {
    try {
      Socket client = check(listener.accept());
      serve(client, server_info);
    } catch (const std::exception &e) {
      server_error = e.what();
    }
  });

  SecurityInfo client_info;
  std::vector<std::pair<std::string, std::string>> transcript;
  std::string client_error;
  try {
    SecuritySettings client_settings;
    client_settings.guarantee_encryption = true;
    client_settings.target_names = {"localhost"};
    Socket socket = check(Socket::connect("127.0.0.1", port, client_settings));
    set_timeouts(socket.native_handle());
    client_info = check(socket.query_security());
    for (const char *message : {"hello", "ssx secures plain sockets", "by administrator policy"}) {
      send_line(socket, message);
      transcript.emplace_back(message, receive_line(socket));
    }
    check(socket.shutdown());  // close_notify: the server's receive_line sees the end
    if (!receive_line(socket).empty()) failure("demo: unexpected data after the exchange");
  } catch (const std::exception &e) {
    client_error = e.what();
    // Wake the server if it is still waiting in accept.
    (void)::shutdown(listener.native_handle(), SHUT_RDWR);
  }
  server.join();
  if (!client_error.empty()) failure("demo client: " + client_error);
  if (!server_error.empty()) failure("demo server: " + server_error);

  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  std::printf("ssx demo: a mutually authenticated TLS connection on 127.0.0.1:%u\n\n", port);
  std::printf(
      "  Made for this run in %s (mode 0700, removed on exit):\n"
      "  a throwaway CA, a server certificate for DNS:localhost, a client certificate for\n"
      "  URI:%s, and a policy that maps that client to the\n"
      "  local account %s. Only that policy is used: /etc/ssx/policy.toml and $SSX_POLICY\n"
      "  are ignored.\n\n",
      dir.path().c_str(), kClientId,
      account.name.empty() ? ("uid " + std::to_string(account.uid)).c_str() : account.name.c_str());
  for (const auto &[sent, reply] : transcript) {
    std::printf("  client -> server  %s\n", sent.c_str());
    std::printf("  server -> client  %s\n", reply.c_str());
  }
  std::printf("\n");
  print_table(rows(client_info, server_info));
  std::printf("\n  done in %lld ms\n", static_cast<long long>(elapsed.count()));
}

}  // namespace

void register_demo(CLI::App &app) {
  CLI::App *demo = app.add_subcommand(
      "demo",
      "Run a secured client and server on 127.0.0.1 and show what each side's query reports "
      "(needs no configuration)");
  set_example(demo, "  ssx demo");
  demo->callback([] { run_demo(); });
}

}  // namespace ssx::cli

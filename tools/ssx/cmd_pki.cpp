// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_pki.cpp — `ssx pki init` and `ssx pki issue`: a small CA in a directory.
//
// DIR holds ca.crt (0644) and ca.key (0600); `issue` adds NAME.crt (the leaf followed by the CA
// certificate: a TLS certificate file) and NAME.key (0600). docs/pki.md is the user's reference.

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "command.hpp"
#include "pki/pki.hpp"

namespace ssx::cli {
namespace {

constexpr const char *kKeyTypes[] = {"ec-p256", "ed25519", "rsa2048"};
constexpr int kMaxDays = 36500;
// Certificates start an hour in the past so that a peer whose clock runs a little slow does not
// reject one issued a moment ago.
constexpr std::int64_t kBackdateSeconds = 3600;

struct InitOptions {
  std::string dir;
  std::string name = "ssx CA";
  std::string key = "ec-p256";
  int days = 3650;
  bool force = false;
};

struct IssueOptions {
  std::string dir;
  std::string name;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  std::vector<std::string> uris;
  int days = 365;
  std::string key = "ec-p256";
  bool client = false;
  bool server = false;
  bool force = false;
  std::string public_key;  // --public-key FILE
};

std::string join_path(const std::string &dir, const std::string &file) {
  if (!dir.empty() && dir.back() == '/') return dir + file;
  return dir + "/" + file;
}

// exists uses lstat so that a dangling symlink also counts: replacing it is still replacing.
bool exists(const std::string &path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// make_private_dir creates |dir| and any missing parents with mode 0700: the CA key lives there.
// An existing directory is used as it is. Returns whether |dir| itself was created.
bool make_private_dir(const std::string &dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) failure(dir + " exists and is not a directory");
    return false;
  }
  for (size_t pos = dir.find('/', 1);; pos = dir.find('/', pos + 1)) {
    std::string prefix = pos == std::string::npos ? dir : dir.substr(0, pos);
    if (!prefix.empty() && mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      failure("cannot create directory " + prefix + ": " + std::strerror(errno));
    }
    if (pos == std::string::npos) break;
  }
  // mkdir's mode is filtered through the umask; make sure of 0700 whatever the umask was.
  if (chmod(dir.c_str(), 0700) != 0) {
    failure("cannot set the mode of " + dir + ": " + std::strerror(errno));
  }
  return true;
}

// refuse_to_replace fails unless |force| when any of |paths| exists; |hint| ends the message.
void refuse_to_replace(const std::vector<std::string> &paths, bool force, const std::string &hint) {
  if (force) return;
  for (const auto &path : paths) {
    if (!exists(path)) continue;
    std::string message = path;
    message += " already exists; ";
    message += hint;
    failure(message);
  }
}

void write(const std::string &path, const std::string &content, unsigned mode) {
  check(pki::write_file(path, content, mode));
}

pki::Validity validity_for_days(int days) {
  return {-kBackdateSeconds, static_cast<std::int64_t>(days) * 24 * 3600};
}

void run_init(const InitOptions &opts) {
  if (opts.name.empty() || opts.name.size() > 64)
    usage_error("--name must have 1 to 64 characters");
  pki::KeyType key = check(pki::parse_key_type(opts.key), kExitUsage);
  std::string cert_path = join_path(opts.dir, "ca.crt");
  std::string key_path = join_path(opts.dir, "ca.key");

  bool created = make_private_dir(opts.dir);
  refuse_to_replace({cert_path, key_path}, opts.force,
                    "pass --force to replace the CA (certificates it issued will stop verifying)");
  pki::Authority ca = check(pki::Authority::create(opts.name, key, validity_for_days(opts.days)));
  // The key first: a crash in between leaves a key without a certificate, which `issue` reports,
  // rather than a certificate whose key is missing.
  write(key_path, ca.key_pem(), 0600);
  write(cert_path, ca.cert_pem(), 0644);

  std::printf("created CA \"%s\" (%s, valid %d days)\n", opts.name.c_str(), opts.key.c_str(),
              opts.days);
  if (created) std::printf("  %-28s directory (mode 0700)\n", opts.dir.c_str());
  std::printf("  %-28s CA certificate: install it where peers look for trusted CAs\n",
              cert_path.c_str());
  std::printf("  %-28s CA private key (mode 0600): keep it secret\n", key_path.c_str());
}

// check_leaf_name keeps NAME a plain file name inside DIR that cannot clobber the CA's files.
void check_leaf_name(const std::string &name) {
  if (name.empty()) usage_error("NAME must not be empty");
  if (name.find('/') != std::string::npos) usage_error("NAME must not contain '/': " + name);
  if (name[0] == '.') usage_error("NAME must not start with '.': " + name);
  if (name == "ca") usage_error("NAME \"ca\" is reserved for the CA's own files");
  if (name.size() > 64) usage_error("NAME must have at most 64 characters (it is the CN)");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) usage_error("NAME must not contain control characters");
  }
}

pki::LeafRequest build_request(const IssueOptions &opts) {
  pki::LeafRequest request;
  request.common_name = opts.name;
  request.dns = opts.dns;
  request.ips = opts.ips;
  request.uris = opts.uris;
  request.key = check(pki::parse_key_type(opts.key), kExitUsage);
  request.validity = validity_for_days(opts.days);
  if (!opts.public_key.empty()) request.public_key = check(pki::read_file(opts.public_key));
  // Neither flag means both: most certificates made here serve both ends of a test connection.
  request.server = opts.server || !opts.client;
  request.client = opts.client || !opts.server;
  // With no SAN given, NAME itself becomes one when it can: TLS clients match host names against
  // SANs only (RFC 6125 §6.4.4), so a CN alone would not let a client verify the server.
  if (request.dns.empty() && request.ips.empty() && request.uris.empty()) {
    if (pki::is_ip_address(opts.name)) {
      request.ips.push_back(opts.name);
    } else if (pki::is_dns_name(opts.name)) {
      request.dns.push_back(opts.name);
    } else {
      (void)std::fprintf(
          stderr,
          "ssx: warning: \"%s\" is not a DNS name or IP address and no --dns/--ip/--uri "
          "was given; the certificate has no subjectAltName, so no TLS client can match "
          "it to a host\n",
          opts.name.c_str());
    }
  }
  check(pki::validate_request(request), kExitUsage);
  return request;
}

std::string describe_sans(const pki::LeafRequest &request) {
  std::string out;
  auto add = [&out](const char *type, const std::vector<std::string> &values) {
    for (const auto &v : values) out += (out.empty() ? "" : ", ") + std::string(type) + ":" + v;
  };
  add("DNS", request.dns);
  add("IP", request.ips);
  add("URI", request.uris);
  return out.empty() ? "none" : out;
}

void run_issue(const IssueOptions &opts) {
  check_leaf_name(opts.name);
  pki::LeafRequest request = build_request(opts);

  std::string ca_cert_path = join_path(opts.dir, "ca.crt");
  std::string ca_key_path = join_path(opts.dir, "ca.key");
  if (!exists(ca_cert_path) && !exists(ca_key_path)) {
    failure("no CA in " + opts.dir + " (run 'ssx pki init " + opts.dir + "' first)");
  }
  std::string ca_cert = check(pki::read_file(ca_cert_path));
  std::string ca_key = check(pki::read_file(ca_key_path));
  auto ca = pki::Authority::from_pem(std::move(ca_cert), std::move(ca_key));
  if (!ca) failure("cannot load the CA in " + opts.dir + ": " + ca.error().message);

  std::string cert_path = join_path(opts.dir, opts.name + ".crt");
  std::string key_path = join_path(opts.dir, opts.name + ".key");
  const bool own_key = opts.public_key.empty();
  refuse_to_replace(
      own_key ? std::vector<std::string>{cert_path, key_path} : std::vector<std::string>{cert_path},
      opts.force, "pass --force to replace it (to renew the certificate)");
  pki::Credential credential = check(ca->issue(request));
  if (own_key) write(key_path, credential.key_pem, 0600);
  write(cert_path, credential.chain_pem, 0644);

  std::string usage = request.server && request.client ? "serverAuth+clientAuth"
                      : request.server                 ? "serverAuth"
                                                       : "clientAuth";
  std::printf("issued \"%s\" (%s, valid %d days, %s)\n", opts.name.c_str(), opts.key.c_str(),
              opts.days, usage.c_str());
  std::printf("  subjectAltName: %s\n", describe_sans(request).c_str());
  std::printf("  %-28s certificate followed by the CA certificate\n", cert_path.c_str());
  if (own_key) {
    std::printf("  %-28s private key (mode 0600)\n", key_path.c_str());
  } else {
    std::printf("  (for the public key in %s; no private key written)\n", opts.public_key.c_str());
  }
}

CLI::Option *add_key_option(CLI::App *app, std::string &key) {
  return app->add_option("--key", key, "Key type: ec-p256, ed25519 or rsa2048")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kKeyTypes), std::end(kKeyTypes))))
      ->capture_default_str();
}

// add_repeatable adds an option given once per value (--dns a --dns b). Taking exactly one value
// per occurrence keeps `--dns a DIR NAME` from swallowing the positionals.
CLI::Option *add_repeatable(CLI::App *app, const std::string &flag, std::vector<std::string> &to,
                            const std::string &help) {
  return app->add_option(flag, to, help)->type_size(1)->allow_extra_args(false);
}

}  // namespace

void register_pki(CLI::App &app) {
  CLI::App *pki =
      app.add_subcommand("pki", "Make a small certificate authority; issue certificates");
  pki->require_subcommand(1);
  set_example(pki,
              "  ssx pki init ./pki --name \"example CA\"\n"
              "  ssx pki issue ./pki server.example.org --ip 192.0.2.10");

  auto init_opts = std::make_shared<InitOptions>();
  CLI::App *init = pki->add_subcommand(
      "init", "Create a CA in DIR: DIR/ca.crt and DIR/ca.key (0600); DIR is created 0700");
  init->add_option("DIR", init_opts->dir, "Directory for the CA (created if missing)")->required();
  init->add_option("--name", init_opts->name, "CA name (its certificate's common name)")
      ->capture_default_str();
  add_key_option(init, init_opts->key);
  init->add_option("--days", init_opts->days, "Validity in days")
      ->check(CLI::Range(1, kMaxDays))
      ->capture_default_str();
  init->add_flag("--force", init_opts->force, "Replace an existing CA in DIR");
  set_example(init, "  ssx pki init /etc/ssx/pki --name \"example.org internal CA\" --days 1825");
  init->callback([init_opts] { run_init(*init_opts); });

  auto issue_opts = std::make_shared<IssueOptions>();
  CLI::App *issue = pki->add_subcommand(
      "issue",
      "Issue a certificate signed by DIR's CA: DIR/NAME.crt (with the CA chain) and DIR/NAME.key "
      "(0600)");
  issue->add_option("DIR", issue_opts->dir, "Directory of the CA (made by 'ssx pki init')")
      ->required();
  issue
      ->add_option("NAME", issue_opts->name,
                   "Certificate name: its common name and file names. With no --dns/--ip/--uri, "
                   "a NAME that is a DNS name or IP address also becomes its subjectAltName")
      ->required();
  add_repeatable(issue, "--dns", issue_opts->dns, "DNS subjectAltName (repeatable)");
  add_repeatable(issue, "--ip", issue_opts->ips, "IP subjectAltName, IPv4 or IPv6 (repeatable)");
  add_repeatable(issue, "--uri", issue_opts->uris,
                 "URI subjectAltName, e.g. spiffe://example.org/svc (repeatable)");
  issue->add_option("--days", issue_opts->days, "Validity in days")
      ->check(CLI::Range(1, kMaxDays))
      ->capture_default_str();
  add_key_option(issue, issue_opts->key);
  issue->add_flag("--client", issue_opts->client, "For TLS clients (extendedKeyUsage clientAuth)");
  issue->add_flag("--server", issue_opts->server, "For TLS servers (extendedKeyUsage serverAuth)");
  issue->add_flag("--force", issue_opts->force, "Replace an existing NAME.crt/NAME.key");
  issue
      ->add_option("--public-key", issue_opts->public_key,
                   "Certify this public key (PEM or DER SubjectPublicKeyInfo, e.g. of a key in a "
                   "PKCS#11 token) instead of making a key: only NAME.crt is written")
      ->type_name("FILE");
  issue->footer(
      "\nWith neither --client nor --server the certificate allows both.\n"
      "\nExamples:\n"
      "  ssx pki issue /etc/ssx/pki web.example.org --dns www.example.org --ip 192.0.2.10 "
      "--server\n"
      "  ssx pki issue /etc/ssx/pki backup-agent --uri spiffe://example.org/backup --client");
  issue->callback([issue_opts] { run_issue(*issue_opts); });
}

}  // namespace ssx::cli

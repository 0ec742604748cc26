// SPDX-License-Identifier: Apache-2.0
// `ssx demo` (what `make demo` runs): with no configuration at all it exits 0, shows each side's
// query, ignores $SSX_POLICY, and leaves nothing behind in its temporary directory.

#include <dirent.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "cli_support.hpp"
#include "testlib/run_command.hpp"
#include "testlib/test_pki.hpp"

namespace ssx::test {
namespace {

bool is_empty_directory(const std::string &path) {
  DIR *d = opendir(path.c_str());
  if (d == nullptr) return false;
  int entries = 0;
  while (dirent *e = readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++entries;
  }
  closedir(d);
  return entries == 0;
}

// row_line returns the table line that starts with |label| (after the two-space indent).
std::string row_line(const std::string &out, const std::string &label) {
  const std::string prefix = "  " + label + "  ";
  for (size_t start = 0; start < out.size();) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (out.compare(start, prefix.size(), prefix) == 0) return out.substr(start, end - start);
    start = end + 1;
  }
  return "";
}

TEST(CliDemo, RunsWithoutConfigurationAndShowsBothQueries) {
  ASSERT_EQ(access(ssx_binary().c_str(), X_OK), 0) << ssx_binary() << " is missing";
  TempDir tmp;
  // A policy in $SSX_POLICY that would make every socket fail: the demo must not read it.
  const std::string broken = tmp.file("broken.toml");
  write_text(broken, "version = 2\n", 0644);
  const std::string scratch = tmp.file("scratch");
  ASSERT_EQ(mkdir(scratch.c_str(), 0700), 0);

  const auto start = std::chrono::steady_clock::now();
  auto result =
      run_command({"env", "SSX_POLICY=" + broken, "TMPDIR=" + scratch, ssx_binary(), "demo"},
                  std::chrono::seconds(30));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(result.exit_code, 0) << result.output;
  // Quick: well under a second on an idle machine; the bound leaves room for a loaded CI.
  EXPECT_LT(elapsed, std::chrono::seconds(10));

  const std::string &out = result.output;
  passwd *pw = getpwuid(geteuid());
  ASSERT_NE(pw, nullptr);
  const std::string user = pw->pw_name;
  const std::vector<std::string> expected = {
      "client's query",
      "server's query",
      "client -> server  hello",
      "server -> client  hello, spiffe://demo.ssx.example/client (local user " + user + ")",
      "$SSX_POLICY",
      "removed on exit",
  };
  for (const std::string &text : expected) {
    EXPECT_NE(out.find(text), std::string::npos) << "missing \"" << text << "\" in\n" << out;
  }
  // Each row: the label, then the client's value, then the server's.
  struct RowCheck {
    std::string label, client, server;
  };
  const std::vector<RowCheck> rows = {
      {"protocol", "TLS", "TLS"},
      {"version", "TLSv1.3", "TLSv1.3"},
      {"cipher", "TLS_", "TLS_"},
      {"key exchange group", "", ""},
      {"policy rule", "demo-client", "demo-server"},
      {"own principal", "spiffe://demo.ssx.example/client", "localhost"},
      {"peer principal", "localhost", "spiffe://demo.ssx.example/client"},
      {"peer names", "localhost", "spiffe://demo.ssx.example/client"},
      {"peer key", "sha256:", "sha256:"},
      {"peer's local account", "(not mapped)",
       user + " (uid " + std::to_string(geteuid()) + ", gid "},
      {"flags", "secured", "secured"},
      {"handshake time", " ms", " ms"},
  };
  for (const RowCheck &row : rows) {
    SCOPED_TRACE(row.label);
    const std::string line = row_line(out, row.label);
    ASSERT_FALSE(line.empty()) << out;
    const size_t client_at = line.find(row.client, row.label.size() + 2);
    ASSERT_NE(client_at, std::string::npos) << line;
    EXPECT_NE(line.find(row.server, client_at + row.client.size()), std::string::npos) << line;
  }
  for (const char *flag :
       {"encrypted", "peer authenticated", "peer name verified", "impersonation available"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag << " in\n" << out;
  }
  // Its temporary directory was under $TMPDIR, and is gone.
  EXPECT_NE(out.find(scratch + "/ssx-demo-"), std::string::npos) << out;
  EXPECT_TRUE(is_empty_directory(scratch)) << "the demo left files in " << scratch;
}

TEST(CliDemo, FailsCleanlyWhenItCannotMakeItsDirectory) {
  auto result = run_command({"env", "TMPDIR=/nonexistent/ssx-demo-test", ssx_binary(), "demo"},
                            std::chrono::seconds(30));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output.rfind("ssx: cannot create a temporary directory", 0), 0u)
      << result.output;
}

}  // namespace
}  // namespace ssx::test

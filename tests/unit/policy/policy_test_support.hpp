// SPDX-License-Identifier: Apache-2.0
// Helpers for the policy tests: a scratch directory, files with a given mode, and certificates
// made with the openssl command line at run time (no key is ever committed).

#ifndef SSX_TESTS_UNIT_POLICY_POLICY_TEST_SUPPORT_HPP
#define SSX_TESTS_UNIT_POLICY_POLICY_TEST_SUPPORT_HPP

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace ssx::policy::testing {

// TempDir is a fresh directory under $TMPDIR (or /tmp), removed with its contents at scope end.
class TempDir {
 public:
  TempDir() {
    const char *tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ssx-policy-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::string &path() const { return path_; }
  std::string file(const std::string &name) const { return path_ + "/" + name; }

  // write creates |name| with |content| and |mode| and returns its path.
  std::string write(const std::string &name, const std::string &content, mode_t mode = 0644) const {
    const std::string p = file(name);
    {
      std::ofstream out(p, std::ios::binary | std::ios::trunc);
      out << content;
    }
    // Set the mode explicitly: the test must not depend on the caller's umask.
    EXPECT_EQ(::chmod(p.c_str(), mode), 0) << p;
    return p;
  }

 private:
  std::string path_;
};

// run runs a shell command quietly and says whether it succeeded.
inline bool run(const std::string &command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

// make_certificate writes a self-signed P-256 certificate NAME.crt and its key NAME.key (mode
// 0600) into |dir| with the openssl command line. Call it in ASSERT_NO_FATAL_FAILURE.
inline void make_certificate(const TempDir &dir, const std::string &name) {
  const std::string common_name = name.substr(name.rfind('/') + 1);
  ASSERT_TRUE(
      run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
          " -subj /CN=" +
          common_name + " -keyout '" + dir.file(name + ".key") + "' -out '" +
          dir.file(name + ".crt") + "'"))
      << "openssl req failed for " << name;
  ASSERT_EQ(::chmod(dir.file(name + ".key").c_str(), 0600), 0);
}

// make_crl writes an empty CRL NAME.crl signed by the certificate made by make_certificate.
// Call it in ASSERT_NO_FATAL_FAILURE.
inline void make_crl(const TempDir &dir, const std::string &name) {
  const std::string config = dir.write(name + "-ca.cnf",
                                       "[ca]\ndefault_ca = ssx_ca\n[ssx_ca]\n"
                                       "database = " +
                                           dir.file(name + "-index.txt") +
                                           "\n"
                                           "crlnumber = " +
                                           dir.file(name + "-crlnumber") +
                                           "\n"
                                           "default_md = sha256\ndefault_crl_days = 1\n");
  dir.write(name + "-index.txt", "");
  dir.write(name + "-crlnumber", "01\n");
  ASSERT_TRUE(run("openssl ca -config '" + config + "' -gencrl -keyfile '" +
                  dir.file(name + ".key") + "' -cert '" + dir.file(name + ".crt") + "' -out '" +
                  dir.file(name + ".crl") + "'"))
      << "openssl ca -gencrl failed";
}

}  // namespace ssx::policy::testing

#endif  // SSX_TESTS_UNIT_POLICY_POLICY_TEST_SUPPORT_HPP

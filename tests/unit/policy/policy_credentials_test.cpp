// SPDX-License-Identifier: Apache-2.0
// Credential checks at load time, with certificates made by the openssl command line in a
// scratch directory; and load_policy_file / policy_path.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "policy/policy.hpp"
#include "policy_test_support.hpp"

namespace ssx::policy {
namespace {

using testing::make_certificate;
using testing::make_crl;
using testing::run;
using testing::TempDir;

class PolicyCredentials : public ::testing::Test {
 protected:
  // One directory with certificates "a" and "b" and a CRL signed by "a" for the whole suite:
  // making keys is the slow part.
  static void SetUpTestSuite() {
    dir_ = std::make_unique<TempDir>();
    ASSERT_NO_FATAL_FAILURE(make_certificate(*dir_, "a"));
    ASSERT_NO_FATAL_FAILURE(make_certificate(*dir_, "b"));
    ASSERT_NO_FATAL_FAILURE(make_crl(*dir_, "a"));
  }
  static void TearDownTestSuite() { dir_.reset(); }

  static std::string path(const std::string &name) { return dir_->file(name); }

  // parse parses |text| as if it were DIR/policy.toml, so relative paths resolve into DIR.
  static Result<Policy> parse(const std::string &text) {
    return parse_policy(text, path("policy.toml"));
  }
  static std::string error_of(const std::string &text) {
    Result<Policy> policy = parse(text);
    if (policy) return "";
    EXPECT_EQ(policy.error().code, EINVAL);
    return policy.error().message;
  }
  // at returns the "DIR/policy.toml:LINE:COLUMN: " prefix of a message.
  static std::string at(int line, int column) {
    return path("policy.toml") + ":" + std::to_string(line) + ":" + std::to_string(column) + ": ";
  }

  static std::unique_ptr<TempDir> dir_;
};

std::unique_ptr<TempDir> PolicyCredentials::dir_;

TEST_F(PolicyCredentials, AcceptsMatchingPairTrustAndCrlWithRelativePaths) {
  Result<Policy> policy = parse(R"(version = 1
[defaults]
certificate = "a.crt"
private_key = "a.key"
trust_bundle = "b.crt"
crl = "a.crl"
)");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(policy->defaults.certificate, path("a.crt"));
  EXPECT_EQ(policy->defaults.private_key, path("a.key"));
  EXPECT_EQ(policy->defaults.trust_bundle, path("b.crt"));
  EXPECT_EQ(policy->defaults.crl, path("a.crl"));
}

TEST_F(PolicyCredentials, AcceptsAbsolutePathsAndTrustDirectory) {
  Result<Policy> policy =
      parse("version = 1\n[defaults]\ncertificate = \"" + path("b.crt") + "\"\nprivate_key = \"" +
            path("b.key") + "\"\ntrust_bundle = \"" + dir_->path() + "\"\n");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(policy->defaults.certificate, path("b.crt"));
  EXPECT_EQ(policy->defaults.trust_bundle, dir_->path());
}

TEST_F(PolicyCredentials, RejectsKeyThatDoesNotMatchCertificate) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"b.key\"\n"),
            at(4, 15) + "private key \"" + path("b.key") + "\" does not match certificate \"" +
                path("a.crt") + "\"");
}

TEST_F(PolicyCredentials, MismatchMessageHoldsNoKeyMaterial) {
  const std::string message =
      error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"b.key\"\n");
  ASSERT_FALSE(message.empty());
  std::ifstream key(path("b.key"));
  std::string line;
  int lines = 0;
  while (std::getline(key, line)) {
    ++lines;
    EXPECT_EQ(message.find(line), std::string::npos) << "key line leaked: " << line;
  }
  EXPECT_GE(lines, 3);
}

TEST_F(PolicyCredentials, RejectsKeyReadableByOthers) {
  std::ifstream in(path("a.key"));
  std::stringstream pem;
  pem << in.rdbuf();
  const std::string loose = dir_->write("loose.key", pem.str(), 0644);
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"loose.key\"\n"),
      at(4, 15) + "private key \"" + loose +
          "\" is accessible by group or others (mode 0644); run: chmod 600 \"" + loose + "\"");
  const std::string group = dir_->write("group.key", pem.str(), 0640);
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"group.key\"\n"),
      at(4, 15) + "private key \"" + group +
          "\" is accessible by group or others (mode 0640); run: chmod 600 \"" + group + "\"");
}

TEST_F(PolicyCredentials, RejectsUnreadableCertificateWithErrnoText) {
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\ncertificate = \"missing.crt\"\nprivate_key = \"a.key\"\n"),
      at(3, 15) + "cannot read certificate \"" + path("missing.crt") +
          "\": No such file or directory");
}

TEST_F(PolicyCredentials, RejectsDirectoryAsPrivateKey) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \".\"\n"),
            at(4, 15) + "cannot read private key \"" + path(".") + "\": Is a directory");
}

TEST_F(PolicyCredentials, RejectsCertificateWithoutKeyAndKeyWithoutCertificate) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\n"),
            at(3, 15) + "certificate is set but private_key is not; set both or neither");
  EXPECT_EQ(error_of("version = 1\n[defaults]\nprivate_key = \"a.key\"\n"),
            at(3, 15) + "private_key is set but certificate is not; set both or neither");
}

TEST_F(PolicyCredentials, RejectsFilesOfTheWrongKind) {
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncertificate = \"a.key\"\nprivate_key = \"a.key\"\n"),
            at(3, 15) + "certificate \"" + path("a.key") + "\" contains no PEM certificate");
  const std::string not_key = dir_->write("not-a.key", "hello\n", 0600);
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"not-a.key\"\n"),
      at(4, 15) + "private key \"" + not_key + "\" contains no PEM private key");
  EXPECT_EQ(error_of("version = 1\n[defaults]\ncrl = \"a.crt\"\n"),
            at(3, 7) + "CRL \"" + path("a.crt") + "\" contains no PEM CRL");
  EXPECT_EQ(error_of("version = 1\n[defaults]\ntrust_bundle = \"a.crl\"\n"),
            at(3, 16) + "trust bundle \"" + path("a.crl") + "\" contains no PEM certificate");
}

TEST_F(PolicyCredentials, RejectsEncryptedKeyWithoutPrompting) {
  ASSERT_TRUE(run("openssl pkey -in '" + path("a.key") + "' -aes256 -passout pass:secret -out '" +
                  path("enc.key") + "'"));
  ASSERT_EQ(::chmod(path("enc.key").c_str(), 0600), 0);
  EXPECT_EQ(
      error_of("version = 1\n[defaults]\ncertificate = \"a.crt\"\nprivate_key = \"enc.key\"\n"),
      at(4, 15) + "private key \"" + path("enc.key") +
          "\" is encrypted; ssx needs an unencrypted key");
}

TEST_F(PolicyCredentials, ChecksRuleKeyAgainstInheritedCertificate) {
  EXPECT_EQ(error_of(R"(version = 1
[defaults]
certificate = "a.crt"
private_key = "a.key"
[[rule]]
name = "other-key"
private_key = "b.key"
)"),
            at(7, 15) + "private key \"" + path("b.key") + "\" does not match certificate \"" +
                path("a.crt") + "\"");
}

TEST_F(PolicyCredentials, RuleMayReplaceOrDropTheCredentialAsAPair) {
  Result<Policy> policy = parse(R"(version = 1
[defaults]
certificate = "a.crt"
private_key = "a.key"
[[rule]]
name = "as-b"
certificate = "b.crt"
private_key = "b.key"
[[rule]]
name = "anonymous-client"
certificate = ""
private_key = ""
)");
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  ASSERT_EQ(policy->rules.size(), 2u);
  EXPECT_EQ(policy->rules[0].settings.private_key, path("b.key"));
  EXPECT_TRUE(policy->rules[1].settings.certificate.empty());
  EXPECT_TRUE(policy->rules[1].settings.private_key.empty());
  EXPECT_EQ(policy->defaults.certificate, path("a.crt"));
}

TEST_F(PolicyCredentials, RejectsRuleThatDropsOnlyTheCertificate) {
  EXPECT_EQ(error_of(R"(version = 1
[defaults]
certificate = "a.crt"
private_key = "a.key"
[[rule]]
name = "half"
certificate = ""
)"),
            at(7, 15) + "private_key is set but certificate is not; set both or neither");
}

// --- load_policy_file and policy_path ----------------------------------------------------------

TEST(PolicyFile, LoadsFileAndNamesItAsSource) {
  TempDir dir;
  const std::string file = dir.write("policy.toml", "version = 1\n[[rule]]\nname = \"r\"\n");
  Result<Policy> policy = load_policy_file(file);
  ASSERT_TRUE(policy.has_value()) << policy.error().message;
  EXPECT_EQ(policy->source, file);
  ASSERT_EQ(policy->rules.size(), 1u);
  EXPECT_EQ(policy->rules[0].name, "r");
}

TEST(PolicyFile, MissingFileIsEnoent) {
  TempDir dir;
  Result<Policy> policy = load_policy_file(dir.file("absent.toml"));
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().code, ENOENT);
  EXPECT_EQ(policy.error().message,
            dir.file("absent.toml") + ": cannot open policy file: No such file or directory");
}

TEST(PolicyFile, UnreadableFileIsItsErrno) {
  // A directory cannot be read as a file whoever we run as (a 0000 file can, by root).
  TempDir dir;
  Result<Policy> policy = load_policy_file(dir.path());
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().code, EISDIR);
  EXPECT_EQ(policy.error().message, dir.path() + ": policy file is a directory");
}

TEST(PolicyFile, InvalidFileIsEinvalWithFirstError) {
  TempDir dir;
  const std::string file =
      dir.write("policy.toml", "version = 1\n[defaults]\nprotocol = \"tcp\"\nbogus = 1\n");
  Result<Policy> policy = load_policy_file(file);
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().code, EINVAL);
  EXPECT_EQ(policy.error().message,
            file + ":3:12: protocol must be \"tls\" or \"dtls\", not \"tcp\"");
}

TEST(PolicyFile, RejectsFileWritableByOthers) {
  TempDir dir;
  const std::string file = dir.write("policy.toml", "version = 1\n", 0666);
  Result<Policy> policy = load_policy_file(file);
  ASSERT_FALSE(policy.has_value());
  EXPECT_EQ(policy.error().code, EACCES);
  EXPECT_EQ(policy.error().message, file +
                                        ": policy file is writable by others (mode 0666); run: "
                                        "chmod o-w \"" +
                                        file + "\"");
}

// ScopedEnv sets or unsets SSX_POLICY for one test and restores it afterwards.
class ScopedPolicyEnv {
 public:
  explicit ScopedPolicyEnv(const char *value) {
    if (const char *old = std::getenv("SSX_POLICY")) saved_ = old;
    if (value != nullptr) {
      ::setenv("SSX_POLICY", value, 1);
    } else {
      ::unsetenv("SSX_POLICY");
    }
  }
  ~ScopedPolicyEnv() {
    if (saved_) {
      ::setenv("SSX_POLICY", saved_->c_str(), 1);
    } else {
      ::unsetenv("SSX_POLICY");
    }
  }

 private:
  std::optional<std::string> saved_;
};

TEST(PolicyFile, PathComesFromEnvironmentWhenSetAndNonEmpty) {
  {
    ScopedPolicyEnv env("/tmp/custom-policy.toml");
    EXPECT_EQ(policy_path(), "/tmp/custom-policy.toml");
  }
  {
    ScopedPolicyEnv env("");
    EXPECT_EQ(policy_path(), "/etc/ssx/policy.toml");
  }
  {
    ScopedPolicyEnv env(nullptr);
    EXPECT_EQ(policy_path(), "/etc/ssx/policy.toml");
  }
}

}  // namespace
}  // namespace ssx::policy

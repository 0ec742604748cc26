// SPDX-License-Identifier: Apache-2.0
#include "ossl/credentials.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "base/text.hpp"
#include "base/unique_fd.hpp"
#include "ossl/inspect.hpp"
#include "ossl/ossl.hpp"

namespace ssx::ossl {
namespace {

constexpr off_t kMaxFileSize = 16 << 20;

// FileBytes holds a file's contents and wipes them on destruction, since they may be a key.
struct FileBytes {
  std::string data;
  mode_t mode = 0;
  FileBytes() = default;
  FileBytes(const FileBytes &) = delete;
  FileBytes &operator=(const FileBytes &) = delete;
  ~FileBytes() {
    if (!data.empty()) OPENSSL_cleanse(data.data(), data.size());
  }
};

using Fd = base::UniqueFd;

Failure read_failure(int code, std::string_view what, const std::string &path) {
  return fail(code, "cannot read " + std::string(what) + " " + base::quote(path) + ": " +
                        std::strerror(code));
}

// read_file reads |path| into |out| (and its mode), describing it as |what| in errors. The mode
// comes from fstat on the descriptor that was read, so it is the mode of those bytes.
Result<void> read_file(const std::string &path, std::string_view what, FileBytes &out) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) return read_failure(errno, what, path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return read_failure(errno, what, path);
  if (S_ISDIR(st.st_mode)) return read_failure(EISDIR, what, path);
  if (!S_ISREG(st.st_mode)) {
    return fail(EINVAL, std::string(what) + " " + base::quote(path) + " is not a regular file");
  }
  if (st.st_size > kMaxFileSize) return read_failure(EFBIG, what, path);
  out.mode = st.st_mode;
  // Reserve up front: growing the string would leave unwiped copies of a key on the heap.
  out.data.reserve(static_cast<std::size_t>(st.st_size) + 1);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int code = errno;
      OPENSSL_cleanse(buf, sizeof buf);
      return read_failure(code, what, path);
    }
    if (out.data.size() + static_cast<std::size_t>(n) > out.data.capacity()) {
      OPENSSL_cleanse(buf, sizeof buf);
      return read_failure(EFBIG, what, path);  // the file grew while being read
    }
    out.data.append(buf, static_cast<std::size_t>(n));
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return {};
}

UniquePtr<BIO> memory_bio(const FileBytes &bytes) {
  return UniquePtr<BIO>(BIO_new_mem_buf(bytes.data.data(), static_cast<int>(bytes.data.size())));
}

// load_leaf returns the first PEM certificate in |path|.
Result<UniquePtr<X509>> load_leaf(const std::string &path) {
  FileBytes bytes;
  if (auto r = read_file(path, "certificate", bytes); !r) return std::move(r).error();
  UniquePtr<BIO> bio = memory_bio(bytes);
  UniquePtr<X509> leaf(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!leaf) {
    return fail(EINVAL, "certificate " + base::quote(path) + " contains no PEM certificate");
  }
  return leaf;
}

// A passphrase callback that refuses: OpenSSL's default would prompt on the terminal of whatever
// program happens to load the policy.
int refuse_passphrase(char *, int, int, void *asked) {
  *static_cast<bool *>(asked) = true;
  return -1;
}

Result<UniquePtr<EVP_PKEY>> load_key(const std::string &path) {
  FileBytes bytes;
  if (auto r = read_file(path, "private key", bytes); !r) return std::move(r).error();
  if ((bytes.mode & 077) != 0) {
    return fail(EACCES, "private key " + base::quote(path) +
                            " is accessible by group or others (mode " +
                            base::file_mode(bytes.mode) + "); run: chmod 600 " + base::quote(path));
  }
  UniquePtr<BIO> bio = memory_bio(bytes);
  bool asked = false;
  UniquePtr<EVP_PKEY> key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, &asked) : nullptr);
  ERR_clear_error();
  if (!key && asked) {
    return fail(EINVAL,
                "private key " + base::quote(path) + " is encrypted; ssx needs an unencrypted key");
  }
  if (!key) {
    return fail(EINVAL, "private key " + base::quote(path) + " contains no PEM private key");
  }
  return key;
}

}  // namespace

Result<void> check_certificate_file(const std::string &path) {
  ErrorQueueGuard guard;
  if (auto leaf = load_leaf(path); !leaf) return std::move(leaf).error();
  return {};
}

Result<void> check_private_key_file(const std::string &path) {
  ErrorQueueGuard guard;
  if (auto key = load_key(path); !key) return std::move(key).error();
  return {};
}

Result<void> check_key_pair(const std::string &certificate_path, const std::string &key_path,
                            KeyPairPart *out_part) {
  ErrorQueueGuard guard;
  KeyPairPart ignored;
  KeyPairPart &part = out_part != nullptr ? *out_part : ignored;
  part = KeyPairPart::certificate;
  auto leaf = load_leaf(certificate_path);
  if (!leaf) return std::move(leaf).error();
  part = KeyPairPart::private_key;
  auto key = load_key(key_path);
  if (!key) return std::move(key).error();
  part = KeyPairPart::both;
  if (X509_check_private_key(leaf->get(), key->get()) != 1) {
    ERR_clear_error();
    return fail(EKEYREJECTED, "private key " + base::quote(key_path) +
                                  " does not match certificate " + base::quote(certificate_path));
  }
  return {};
}

Result<void> check_trust_bundle(const std::string &path) {
  ErrorQueueGuard guard;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    DIR *dir = ::opendir(path.c_str());
    if (dir == nullptr) return read_failure(errno, "trust bundle", path);
    ::closedir(dir);
    return {};
  }
  FileBytes bytes;
  if (auto r = read_file(path, "trust bundle", bytes); !r) return r;
  UniquePtr<BIO> bio = memory_bio(bytes);
  UniquePtr<X509> first(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!first) {
    return fail(EINVAL, "trust bundle " + base::quote(path) + " contains no PEM certificate");
  }
  return {};
}

Result<void> check_crl_file(const std::string &path) {
  ErrorQueueGuard guard;
  FileBytes bytes;
  if (auto r = read_file(path, "CRL", bytes); !r) return r;
  UniquePtr<BIO> bio = memory_bio(bytes);
  UniquePtr<X509_CRL> crl(bio ? PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)
                              : nullptr);
  ERR_clear_error();
  if (!crl) return fail(EINVAL, "CRL " + base::quote(path) + " contains no PEM CRL");
  return {};
}

namespace {

// to_time_t converts an ASN1_TIME to seconds since the epoch (0 when it cannot be read).
std::time_t to_time_t(const ASN1_TIME *t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return ::timegm(&tm);
}

// common_name_of returns the last commonName of |name| as UTF-8 ("" when none or unreadable).
std::string common_name_of(const X509_NAME *name) {
  const int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return {};
  int last = index;
  for (int next = index; next >= 0; next = X509_NAME_get_index_by_NID(name, NID_commonName, next)) {
    last = next;
  }
  const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, last);
  unsigned char *utf8 = nullptr;
  const int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
  if (n < 0 || utf8 == nullptr) return {};
  std::string out(reinterpret_cast<const char *>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

CertificateFacts facts_of(X509 *cert) {
  CertificateFacts facts{};
  facts.common_name = common_name_of(X509_get_subject_name(cert));
  UniquePtr<BIO> out(BIO_new(BIO_s_mem()));
  if (out && X509_NAME_print_ex(out.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
    char *data = nullptr;
    const long n = BIO_get_mem_data(out.get(), &data);
    if (n > 0 && data != nullptr) facts.subject.assign(data, static_cast<std::size_t>(n));
  }
  // X509_get_extension_flags caches the parsed extensions; EXFLAG_XKUSAGE says the extended key
  // usage extension is present, and X509_get_extended_key_usage gives its bits (all set when
  // absent, as RFC 5280 §4.2.1.12 reads: no restriction).
  const std::uint32_t flags = X509_get_extension_flags(cert);
  const std::uint32_t xku = X509_get_extended_key_usage(cert);
  facts.has_extended_key_usage = (flags & EXFLAG_XKUSAGE) != 0;
  facts.server_auth = (xku & XKU_SSL_SERVER) != 0;
  facts.client_auth = (xku & XKU_SSL_CLIENT) != 0;
  facts.is_ca = X509_check_ca(cert) != 0 && (flags & EXFLAG_CA) != 0;
  facts.not_before = to_time_t(X509_get0_notBefore(cert));
  facts.not_after = to_time_t(X509_get0_notAfter(cert));
  ERR_clear_error();
  return facts;
}

}  // namespace

Result<CertificateFacts> inspect_certificate_file(const std::string &path) {
  ErrorQueueGuard guard;
  auto leaf = load_leaf(path);
  if (!leaf) return std::move(leaf).error();
  return facts_of(leaf->get());
}

Result<CertificateFacts> inspect_certificate_pem(std::string_view pem) {
  ErrorQueueGuard guard;
  if (pem.size() > static_cast<std::size_t>(INT_MAX)) return fail(EINVAL, "no PEM certificate");
  UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  UniquePtr<X509> leaf(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  ERR_clear_error();
  if (!leaf) return fail(EINVAL, "no PEM certificate");
  return facts_of(leaf.get());
}

}  // namespace ssx::ossl

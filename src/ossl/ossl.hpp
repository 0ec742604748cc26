// SPDX-License-Identifier: Apache-2.0
// ossl/ossl.hpp — owning pointers for OpenSSL objects and the OpenSSL error queue.
//
// UniquePtr<T> frees an OpenSSL object with its own free function, so no code in ssx holds an
// owning raw pointer to one. OpenSSL keeps a per-thread error queue: stale entries make a later
// failure report an earlier cause, so every public entry point clears it (ErrorQueueGuard) and
// every failure drains it into the message (drain_errors).

#ifndef SSX_OSSL_OSSL_HPP
#define SSX_OSSL_OSSL_HPP

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace ssx::ossl {

template <class T>
struct Deleter;

#define SSX_OSSL_DELETER(type, free_fn)            \
  template <>                                      \
  struct Deleter<type> {                           \
    void operator()(type *p) const { free_fn(p); } \
  }

SSX_OSSL_DELETER(SSL_CTX, SSL_CTX_free);
SSX_OSSL_DELETER(SSL, SSL_free);
SSX_OSSL_DELETER(SSL_SESSION, SSL_SESSION_free);
SSX_OSSL_DELETER(X509, X509_free);
SSX_OSSL_DELETER(X509_CRL, X509_CRL_free);
SSX_OSSL_DELETER(X509_NAME, X509_NAME_free);
SSX_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free);
SSX_OSSL_DELETER(X509_STORE, X509_STORE_free);
SSX_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free);
SSX_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free);
SSX_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free);
SSX_OSSL_DELETER(EVP_MD, EVP_MD_free);
SSX_OSSL_DELETER(BIO, BIO_free_all);
SSX_OSSL_DELETER(BIO_METHOD, BIO_meth_free);
SSX_OSSL_DELETER(BIO_ADDR, BIO_ADDR_free);
SSX_OSSL_DELETER(BIGNUM, BN_free);
// ASN1_INTEGER, ASN1_TIME, ASN1_OCTET_STRING, ASN1_IA5STRING, … are all typedefs of
// ASN1_STRING, so one deleter serves them all (a second specialisation would be a redefinition).
SSX_OSSL_DELETER(ASN1_STRING, ASN1_STRING_free);
SSX_OSSL_DELETER(GENERAL_NAME, GENERAL_NAME_free);
SSX_OSSL_DELETER(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free);
SSX_OSSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free);
SSX_OSSL_DELETER(STACK_OF(X509), sk_X509_free);

#undef SSX_OSSL_DELETER

template <class T>
using UniquePtr = std::unique_ptr<T, Deleter<T>>;

// X509Stack owns a STACK_OF(X509) together with its certificates.
struct X509StackPopFree {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
using X509Stack = std::unique_ptr<STACK_OF(X509), X509StackPopFree>;

// drain_errors empties this thread's OpenSSL error queue and returns its entries as one line,
// most recent last, e.g. "error:0A000086:SSL routines::certificate verify failed". Returns ""
// when the queue was empty. Never includes key material (OpenSSL's messages carry none).
std::string drain_errors();

// ErrorQueueGuard clears the error queue on construction, so that failures inside a call report
// their own cause rather than a stale one.
class ErrorQueueGuard {
 public:
  // ERR_peek_error costs ~200 instructions, ERR_clear_error ~840 (it resets every slot): clear
  // only when there is something to clear, which on the data path there almost never is.
  ErrorQueueGuard() { clear_errors(); }
  static void clear_errors() {
    if (ERR_peek_error() != 0) ERR_clear_error();
  }
  ErrorQueueGuard(const ErrorQueueGuard &) = delete;
  ErrorQueueGuard &operator=(const ErrorQueueGuard &) = delete;
};

// free_buffers_is_safe says whether this OpenSSL's SSL_free_buffers() refuses to free a read
// buffer that still holds part of a record. Releases before 3.0.14, 3.1.6, 3.2.2 and 3.3.1 did
// not (CVE-2024-4741: use after free); with those, callers must leave buffer release to
// SSL_MODE_RELEASE_BUFFERS. Computed once; thread-safe.
bool free_buffers_is_safe();

// dtls13_available says whether this OpenSSL provides DTLS 1.3 (OpenSSL 3.0 does not): the
// policy accepts min_dtls_version = "1.3" only then.
bool dtls13_available();

// free_buffers_is_safe_in is the version rule behind free_buffers_is_safe, for tests.
bool free_buffers_is_safe_in(unsigned major, unsigned minor, unsigned patch);

// read_file_bio opens |path| for reading as a BIO, or returns null (errno set by fopen).
UniquePtr<BIO> read_file_bio(const std::string &path);

// to_hex returns lowercase hex of |bytes|.
std::string to_hex(const unsigned char *bytes, size_t len);

// append_pem appends |der| to |out| as a PEM block labelled |label|, byte for byte what
// PEM_write_bio(bio, label, "", der, len) writes: 64 base64 characters a line, every line ending
// in '\n'. It costs a fraction of the BIO route, which matters on the query path.
void append_pem(std::string &out, const char *label, const unsigned char *der, size_t len);

// append_certificate_pem appends |cert| as PEM, as PEM_write_bio_X509 would. Returns false (and
// leaves |out| as it was) when the certificate cannot be encoded.
bool append_certificate_pem(std::string &out, X509 *cert);

// spki_sha256_hex returns the lowercase hex SHA-256 of |cert|'s SubjectPublicKeyInfo (DER), the
// value a "sha256:" key pin names.
std::string spki_sha256_hex(X509 *cert);

}  // namespace ssx::ossl

#endif  // SSX_OSSL_OSSL_HPP

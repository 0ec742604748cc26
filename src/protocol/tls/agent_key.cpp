// SPDX-License-Identifier: Apache-2.0
// The "ssxagent" OpenSSL provider: key management and signatures for keys held by `ssx agent`.
//
// Key data (AgentKey) holds a public key made by the default provider (in the same library
// context) and, for keys made by make_agent_key, the reference to the agent. Everything about the
// public half (bits, group, encoded point, export of the public key, comparison) is delegated to
// that public key. The private half exists only in the agent: export of anything private fails,
// so OpenSSL can never move the key to another provider and sign there, and signing goes to the
// agent through sign_digest().

#include "protocol/tls/agent_key.hpp"

#include <openssl/core_dispatch.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/rsa.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

#include "ssx/ssx.h"

namespace ssx::tls {
namespace {

constexpr const char *kProviderName = "ssxagent";
constexpr const char *kDefaultProps = "provider=default";
constexpr const char *kRefParam = "ssx-agent-ref";
// The parameter carries the address of a std::shared_ptr<AgentKeyRef> (make_agent_key's).
using RefHolder = std::shared_ptr<AgentKeyRef> *;
constexpr std::size_t kRefSize = sizeof(void *);
static_assert(sizeof(RefHolder) == kRefSize);

thread_local std::optional<Failure> t_failure;

void note_failure(Failure f) {
  t_failure = std::move(f);
}

enum class KeyType { ec, rsa };

struct AgentKey {
  KeyType type = KeyType::ec;
  ossl::UniquePtr<EVP_PKEY> pub;     // default provider, public half only
  std::shared_ptr<AgentKeyRef> ref;  // null for a key imported for comparison
};

OSSL_LIB_CTX *g_libctx = nullptr;

const char *type_name(KeyType type) {
  return type == KeyType::ec ? "EC" : "RSA";
}

// --- key management ------------------------------------------------------------------------------

template <KeyType T>
void *km_new(void *) {
  auto *key = new (std::nothrow) AgentKey();
  if (key != nullptr) key->type = T;
  return key;
}

void km_free(void *keydata) {
  delete static_cast<AgentKey *>(keydata);
}

int km_has(const void *keydata, int selection) {
  const auto *key = static_cast<const AgentKey *>(keydata);
  if (key == nullptr || !key->pub) return 0;
  // The private half counts as present only where the agent has it.
  if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0 && !key->ref) return 0;
  return 1;
}

int km_match(const void *a, const void *b, int) {
  const auto *x = static_cast<const AgentKey *>(a);
  const auto *y = static_cast<const AgentKey *>(b);
  if (x == nullptr || y == nullptr || !x->pub || !y->pub) return 0;
  return EVP_PKEY_eq(x->pub.get(), y->pub.get()) == 1 ? 1 : 0;
}

template <KeyType T>
int km_import(void *keydata, int selection, const OSSL_PARAM params[]) {
  auto *key = static_cast<AgentKey *>(keydata);
  if (key == nullptr || (selection & OSSL_KEYMGMT_SELECT_PUBLIC_KEY) == 0) return 0;
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(
      EVP_PKEY_CTX_new_from_name(g_libctx, type_name(T), kDefaultProps));
  EVP_PKEY *made = nullptr;
  // EVP_PKEY_PUBLIC_KEY: a private value among |params| is never taken.
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_PUBLIC_KEY, const_cast<OSSL_PARAM *>(params)) !=
          1) {
    return 0;
  }
  key->pub.reset(made);
  // make_agent_key passes the agent reference along with the public key.
  if (const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, kRefParam);
      p != nullptr && p->data_type == OSSL_PARAM_OCTET_STRING && p->data_size == kRefSize) {
    RefHolder holder = nullptr;
    std::memcpy(static_cast<void *>(&holder), p->data, kRefSize);
    key->ref = *holder;
  }
  return 1;
}

int km_export(void *keydata, int selection, OSSL_CALLBACK *callback, void *arg) {
  auto *key = static_cast<AgentKey *>(keydata);
  if (key == nullptr || !key->pub) return 0;
  if ((selection & OSSL_KEYMGMT_SELECT_PRIVATE_KEY) != 0) return 0;  // it is not here
  OSSL_PARAM *params = nullptr;
  if (EVP_PKEY_todata(key->pub.get(), selection, &params) != 1) return 0;
  const int ok = callback(params, arg);
  OSSL_PARAM_free(params);
  return ok;
}

const OSSL_PARAM *km_types(int) {
  static const OSSL_PARAM kTypes[] = {
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0), OSSL_PARAM_END};
  return kTypes;
}

int km_get_params(void *keydata, OSSL_PARAM params[]) {
  auto *key = static_cast<AgentKey *>(keydata);
  if (key == nullptr || !key->pub) return 0;
  // Answer what the public key knows; leave the rest unanswered (as "not available").
  for (OSSL_PARAM *p = params; p != nullptr && p->key != nullptr; ++p) {
    OSSL_PARAM one[2] = {*p, OSSL_PARAM_END};
    if (EVP_PKEY_get_params(key->pub.get(), one) == 1) *p = one[0];
  }
  return 1;
}

const OSSL_PARAM *km_gettable_params(void *) {
  static const OSSL_PARAM kGettable[] = {
      OSSL_PARAM_int(OSSL_PKEY_PARAM_BITS, nullptr),
      OSSL_PARAM_int(OSSL_PKEY_PARAM_SECURITY_BITS, nullptr),
      OSSL_PARAM_int(OSSL_PKEY_PARAM_MAX_SIZE, nullptr),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0),
      OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_N, nullptr, 0),
      OSSL_PARAM_BN(OSSL_PKEY_PARAM_RSA_E, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_DEFAULT_DIGEST, nullptr, 0),
      OSSL_PARAM_END};
  return kGettable;
}

template <KeyType T>
const char *km_operation_name(int operation_id) {
  if (operation_id != OSSL_OP_SIGNATURE) return nullptr;
  return T == KeyType::ec ? "ECDSA" : "RSA";
}

using Fn = void (*)();
template <class F>
Fn fn(F *f) {
  return reinterpret_cast<Fn>(f);
}

template <KeyType T>
const OSSL_DISPATCH *keymgmt_dispatch() {
  static const OSSL_DISPATCH kDispatch[] = {
      {OSSL_FUNC_KEYMGMT_NEW, fn(&km_new<T>)},
      {OSSL_FUNC_KEYMGMT_FREE, fn(&km_free)},
      {OSSL_FUNC_KEYMGMT_HAS, fn(&km_has)},
      {OSSL_FUNC_KEYMGMT_MATCH, fn(&km_match)},
      {OSSL_FUNC_KEYMGMT_IMPORT, fn(&km_import<T>)},
      {OSSL_FUNC_KEYMGMT_IMPORT_TYPES, fn(&km_types)},
      {OSSL_FUNC_KEYMGMT_EXPORT, fn(&km_export)},
      {OSSL_FUNC_KEYMGMT_EXPORT_TYPES, fn(&km_types)},
      {OSSL_FUNC_KEYMGMT_GET_PARAMS, fn(&km_get_params)},
      {OSSL_FUNC_KEYMGMT_GETTABLE_PARAMS, fn(&km_gettable_params)},
      {OSSL_FUNC_KEYMGMT_QUERY_OPERATION_NAME, fn(&km_operation_name<T>)},
      {0, nullptr}};
  return kDispatch;
}

// --- signatures ----------------------------------------------------------------------------------

struct SignCtx {
  AgentKey *key = nullptr;  // borrowed: OpenSSL keeps the EVP_PKEY alive during the operation
  ossl::UniquePtr<EVP_MD_CTX> md;
  agent::Hash hash = agent::Hash::sha256;
  bool hash_set = false;
  int padding = RSA_PKCS1_PADDING;
  int saltlen = RSA_PSS_SALTLEN_DIGEST;
};

void *sig_new(void *, const char *) {
  return new (std::nothrow) SignCtx();
}
void sig_free(void *ctx) {
  delete static_cast<SignCtx *>(ctx);
}

void *sig_dup(void *ctx) {
  const auto *from = static_cast<const SignCtx *>(ctx);
  auto *to = new (std::nothrow) SignCtx();
  if (to == nullptr) return nullptr;
  to->key = from->key;
  to->hash = from->hash;
  to->hash_set = from->hash_set;
  to->padding = from->padding;
  to->saltlen = from->saltlen;
  if (from->md) {
    to->md.reset(EVP_MD_CTX_new());
    if (!to->md || EVP_MD_CTX_copy_ex(to->md.get(), from->md.get()) != 1) {
      delete to;
      return nullptr;
    }
  }
  return to;
}

bool hash_from_name(const char *name, agent::Hash *out) {
  if (name == nullptr) return false;
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(g_libctx, name, kDefaultProps));
  if (!md) return false;
  if (EVP_MD_is_a(md.get(), "SHA2-256")) {
    *out = agent::Hash::sha256;
  } else if (EVP_MD_is_a(md.get(), "SHA2-384")) {
    *out = agent::Hash::sha384;
  } else if (EVP_MD_is_a(md.get(), "SHA2-512")) {
    *out = agent::Hash::sha512;
  } else {
    return false;
  }
  return true;
}

const char *hash_name(agent::Hash hash) {
  switch (hash) {
    case agent::Hash::sha256:
      return "SHA2-256";
    case agent::Hash::sha384:
      return "SHA2-384";
    case agent::Hash::sha512:
      return "SHA2-512";
  }
  return "SHA2-256";
}

int sig_set_params(void *vctx, const OSSL_PARAM params[]) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  if (params == nullptr) return 1;
  for (const OSSL_PARAM *p = params; p->key != nullptr; ++p) {
    if (std::strcmp(p->key, OSSL_SIGNATURE_PARAM_PAD_MODE) == 0) {
      if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *mode = static_cast<const char *>(p->data);
        if (std::strcmp(mode, OSSL_PKEY_RSA_PAD_MODE_PSS) == 0) {
          ctx->padding = RSA_PKCS1_PSS_PADDING;
        } else if (std::strcmp(mode, OSSL_PKEY_RSA_PAD_MODE_PKCSV15) == 0) {
          ctx->padding = RSA_PKCS1_PADDING;
        } else {
          return 0;
        }
      } else if (OSSL_PARAM_get_int(p, &ctx->padding) != 1) {
        return 0;
      }
    } else if (std::strcmp(p->key, OSSL_SIGNATURE_PARAM_PSS_SALTLEN) == 0) {
      if (p->data_type == OSSL_PARAM_UTF8_STRING) {
        const char *len = static_cast<const char *>(p->data);
        if (std::strcmp(len, OSSL_PKEY_RSA_PSS_SALT_LEN_DIGEST) == 0) {
          ctx->saltlen = RSA_PSS_SALTLEN_DIGEST;
        } else {
          ctx->saltlen = -100;  // anything else is refused when signing
        }
      } else if (OSSL_PARAM_get_int(p, &ctx->saltlen) != 1) {
        return 0;
      }
    } else if (std::strcmp(p->key, OSSL_SIGNATURE_PARAM_DIGEST) == 0 ||
               std::strcmp(p->key, OSSL_SIGNATURE_PARAM_MGF1_DIGEST) == 0) {
      const char *name = nullptr;
      agent::Hash hash{};
      if (OSSL_PARAM_get_utf8_string_ptr(p, &name) != 1 || !hash_from_name(name, &hash)) return 0;
      if (std::strcmp(p->key, OSSL_SIGNATURE_PARAM_DIGEST) == 0) {
        ctx->hash = hash;
        ctx->hash_set = true;
      } else if (ctx->hash_set && hash != ctx->hash) {
        return 0;  // the agent uses MGF1 with the message digest, as TLS does
      }
    }
  }
  return 1;
}

const OSSL_PARAM *sig_settable_params(void *, void *) {
  static const OSSL_PARAM kSettable[] = {
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PAD_MODE, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_PSS_SALTLEN, nullptr, 0),
      OSSL_PARAM_utf8_string(OSSL_SIGNATURE_PARAM_MGF1_DIGEST, nullptr, 0), OSSL_PARAM_END};
  return kSettable;
}

int sig_sign_init(void *vctx, void *keydata, const OSSL_PARAM params[]) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  auto *key = static_cast<AgentKey *>(keydata);
  if (key == nullptr || !key->ref) return 0;
  ctx->key = key;
  ctx->padding = key->type == KeyType::rsa ? RSA_PKCS1_PADDING : 0;
  return sig_set_params(ctx, params);
}

int sig_digest_sign_init(void *vctx, const char *mdname, void *keydata, const OSSL_PARAM params[]) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  if (sig_sign_init(vctx, keydata, nullptr) != 1) return 0;
  if (mdname == nullptr || !hash_from_name(mdname, &ctx->hash)) return 0;
  ctx->hash_set = true;
  ctx->md.reset(EVP_MD_CTX_new());
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(g_libctx, hash_name(ctx->hash), kDefaultProps));
  if (!ctx->md || !md || EVP_DigestInit_ex(ctx->md.get(), md.get(), nullptr) != 1) return 0;
  return sig_set_params(ctx, params);
}

int sig_digest_sign_update(void *vctx, const unsigned char *data, size_t len) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  return ctx->md && EVP_DigestUpdate(ctx->md.get(), data, len) == 1 ? 1 : 0;
}

// sign_digest asks the agent to sign |digest| and checks the answer against the public key.
int sign_digest(SignCtx *ctx, unsigned char *sig, size_t *siglen, size_t sigsize,
                const unsigned char *digest, size_t digest_len) {
  AgentKey *key = ctx->key;
  const size_t max = static_cast<size_t>(EVP_PKEY_get_size(key->pub.get()));
  if (sig == nullptr) {
    *siglen = max;
    return 1;
  }
  AgentKeyRef &ref = *key->ref;
  agent::SignRequest request;
  request.key = ref.key;
  request.rule = ref.rule;
  request.hash = ctx->hash;
  request.certificate = ref.certificate;
  request.digest.assign(digest, digest + digest_len);
  if (key->type == KeyType::ec) {
    request.scheme = agent::Scheme::ecdsa;
  } else if (ctx->padding == RSA_PKCS1_PSS_PADDING) {
    if (ctx->saltlen != RSA_PSS_SALTLEN_DIGEST &&
        ctx->saltlen != static_cast<int>(agent::digest_size(ctx->hash))) {
      note_failure(fail(EACCES, SSX_REASON_AGENT_REFUSED,
                        "ssx agent keys sign RSA-PSS with a salt as long as the digest only"));
      return 0;
    }
    request.scheme = agent::Scheme::rsa_pss;
  } else if (ctx->padding == RSA_PKCS1_PADDING) {
    request.scheme = agent::Scheme::rsa_pkcs1;
  } else {
    note_failure(
        fail(EACCES, SSX_REASON_AGENT_REFUSED, "unsupported RSA padding for an agent key"));
    return 0;
  }
  if (digest_len != agent::digest_size(ctx->hash)) return 0;
  auto answer = agent::sign(ref.endpoint, request);
  if (!answer) {
    Failure f = std::move(answer).error();
    if (f.code == ESTALE) {
      // The agent rotated the key twice since this context was built: rebuild it.
      ref.rotated.store(true, std::memory_order_relaxed);
      f.code = EACCES;
    }
    note_failure(std::move(f));
    return 0;
  }
  if (answer->rotated) ref.rotated.store(true, std::memory_order_relaxed);
  // Never hand OpenSSL a signature that does not verify: a confused or impostor agent must fail
  // the handshake here, with a reason, not at the peer.
  ossl::UniquePtr<EVP_PKEY_CTX> verify(
      EVP_PKEY_CTX_new_from_pkey(g_libctx, key->pub.get(), kDefaultProps));
  ossl::UniquePtr<EVP_MD> md(EVP_MD_fetch(g_libctx, hash_name(ctx->hash), kDefaultProps));
  bool good = verify && md && EVP_PKEY_verify_init(verify.get()) == 1 &&
              EVP_PKEY_CTX_set_signature_md(verify.get(), md.get()) == 1;
  if (good && key->type == KeyType::rsa) {
    const bool pss = request.scheme == agent::Scheme::rsa_pss;
    good = EVP_PKEY_CTX_set_rsa_padding(verify.get(),
                                        pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) == 1 &&
           (!pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(verify.get(), RSA_PSS_SALTLEN_DIGEST) == 1);
  }
  good = good && EVP_PKEY_verify(verify.get(), answer->signature.data(), answer->signature.size(),
                                 digest, digest_len) == 1;
  ERR_clear_error();
  if (!good) {
    note_failure(fail(EACCES, SSX_REASON_AGENT_REFUSED,
                      "ssx agent answered with a signature that does not verify with the "
                      "certificate's key (key \"" +
                          ref.key + "\")"));
    return 0;
  }
  if (answer->signature.size() > sigsize) return 0;
  std::memcpy(sig, answer->signature.data(), answer->signature.size());
  *siglen = answer->signature.size();
  return 1;
}

int sig_sign(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize,
             const unsigned char *tbs, size_t tbslen) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  if (ctx->key == nullptr) return 0;
  if (!ctx->hash_set) {
    // EVP_PKEY_sign without a digest named: infer it from the length.
    if (tbslen == 32)
      ctx->hash = agent::Hash::sha256;
    else if (tbslen == 48)
      ctx->hash = agent::Hash::sha384;
    else if (tbslen == 64)
      ctx->hash = agent::Hash::sha512;
    else
      return 0;
  }
  return sign_digest(ctx, sig, siglen, sigsize, tbs, tbslen);
}

int sig_digest_sign_final(void *vctx, unsigned char *sig, size_t *siglen, size_t sigsize) {
  auto *ctx = static_cast<SignCtx *>(vctx);
  if (ctx->key == nullptr || !ctx->md) return 0;
  if (sig == nullptr) return sign_digest(ctx, nullptr, siglen, 0, nullptr, 0);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx->md.get(), digest, &n) != 1) return 0;
  return sign_digest(ctx, sig, siglen, sigsize, digest, n);
}

const OSSL_DISPATCH *signature_dispatch() {
  static const OSSL_DISPATCH kDispatch[] = {
      {OSSL_FUNC_SIGNATURE_NEWCTX, fn(&sig_new)},
      {OSSL_FUNC_SIGNATURE_FREECTX, fn(&sig_free)},
      {OSSL_FUNC_SIGNATURE_DUPCTX, fn(&sig_dup)},
      {OSSL_FUNC_SIGNATURE_SIGN_INIT, fn(&sig_sign_init)},
      {OSSL_FUNC_SIGNATURE_SIGN, fn(&sig_sign)},
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_INIT, fn(&sig_digest_sign_init)},
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_UPDATE, fn(&sig_digest_sign_update)},
      {OSSL_FUNC_SIGNATURE_DIGEST_SIGN_FINAL, fn(&sig_digest_sign_final)},
      {OSSL_FUNC_SIGNATURE_SET_CTX_PARAMS, fn(&sig_set_params)},
      {OSSL_FUNC_SIGNATURE_SETTABLE_CTX_PARAMS, fn(&sig_settable_params)},
      {0, nullptr}};
  return kDispatch;
}

// --- the provider --------------------------------------------------------------------------------

const OSSL_ALGORITHM *query(void *, int operation_id, int *no_cache) {
  *no_cache = 0;
  static const OSSL_ALGORITHM kKeymgmt[] = {
      {"EC:id-ecPublicKey:1.2.840.10045.2.1", "provider=ssxagent", keymgmt_dispatch<KeyType::ec>(),
       "EC key held by ssx agent"},
      {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=ssxagent",
       keymgmt_dispatch<KeyType::rsa>(), "RSA key held by ssx agent"},
      {nullptr, nullptr, nullptr, nullptr}};
  static const OSSL_ALGORITHM kSignature[] = {
      {"ECDSA", "provider=ssxagent", signature_dispatch(), "ECDSA by ssx agent"},
      {"RSA:rsaEncryption:1.2.840.113549.1.1.1", "provider=ssxagent", signature_dispatch(),
       "RSA signatures by ssx agent"},
      {nullptr, nullptr, nullptr, nullptr}};
  if (operation_id == OSSL_OP_KEYMGMT) return kKeymgmt;
  if (operation_id == OSSL_OP_SIGNATURE) return kSignature;
  return nullptr;
}

void teardown(void *) {}

int provider_init(const OSSL_CORE_HANDLE *, const OSSL_DISPATCH *, const OSSL_DISPATCH **out,
                  void **provctx) {
  static const OSSL_DISPATCH kDispatch[] = {{OSSL_FUNC_PROVIDER_QUERY_OPERATION, fn(&query)},
                                            {OSSL_FUNC_PROVIDER_TEARDOWN, fn(&teardown)},
                                            {0, nullptr}};
  *out = kDispatch;
  *provctx = nullptr;
  return 1;
}

OSSL_LIB_CTX *make_libctx() {
  OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
  if (libctx == nullptr) return nullptr;
  g_libctx = libctx;
  if (OSSL_PROVIDER_load(libctx, "default") == nullptr ||
      OSSL_PROVIDER_add_builtin(libctx, kProviderName, provider_init) != 1 ||
      OSSL_PROVIDER_load(libctx, kProviderName) == nullptr ||
      // Every fetch prefers the default provider; only a query that names ours reaches it.
      EVP_set_default_properties(libctx, "?provider=default") != 1) {
    ERR_clear_error();
    g_libctx = nullptr;
    OSSL_LIB_CTX_free(libctx);
    return nullptr;
  }
  return libctx;
}

}  // namespace

OSSL_LIB_CTX *agent_libctx() {
  static OSSL_LIB_CTX *const kLibctx = make_libctx();  // lives as long as the process
  return kLibctx;
}

agent::Fingerprint fingerprint(X509 *cert) {
  agent::Fingerprint out{};
  unsigned int n = 0;
  X509_digest(cert, EVP_sha256(), out.data(), &n);
  return out;
}

Result<ossl::UniquePtr<EVP_PKEY>> make_agent_key(X509 *leaf, std::shared_ptr<AgentKeyRef> ref) {
  OSSL_LIB_CTX *libctx = agent_libctx();
  if (libctx == nullptr) {
    return fail(EACCES, SSX_REASON_INTERNAL, "cannot set up the OpenSSL provider for agent keys");
  }
  EVP_PKEY *cert_key = X509_get0_pubkey(leaf);
  if (cert_key == nullptr)
    return fail(EACCES, SSX_REASON_POLICY_INVALID, "certificate has no usable public key");
  KeyType type;
  if (EVP_PKEY_is_a(cert_key, "EC")) {
    type = KeyType::ec;
  } else if (EVP_PKEY_is_a(cert_key, "RSA")) {
    type = KeyType::rsa;
  } else {
    return fail(EACCES, SSX_REASON_POLICY_INVALID,
                "agent keys must be EC or RSA; key \"" + ref->key + "\" is neither");
  }
  // The public half, re-made by the default provider of our library context.
  OSSL_PARAM *params = nullptr;
  if (EVP_PKEY_todata(cert_key, EVP_PKEY_PUBLIC_KEY, &params) != 1) {
    ERR_clear_error();
    return fail(EACCES, SSX_REASON_INTERNAL, "cannot read the certificate's public key");
  }
  // Our key management receives the public key through import: make it with our provider.
  std::vector<OSSL_PARAM> all;
  for (const OSSL_PARAM *p = params; p->key != nullptr; ++p) all.push_back(*p);
  RefHolder holder = &ref;
  all.push_back(
      OSSL_PARAM_construct_octet_string(kRefParam, static_cast<void *>(&holder), kRefSize));
  all.push_back(OSSL_PARAM_construct_end());
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(
      EVP_PKEY_CTX_new_from_name(libctx, type_name(type), "provider=ssxagent"));
  EVP_PKEY *made = nullptr;
  const bool ok = ctx && EVP_PKEY_fromdata_init(ctx.get()) == 1 &&
                  EVP_PKEY_fromdata(ctx.get(), &made, EVP_PKEY_PUBLIC_KEY, all.data()) == 1;
  OSSL_PARAM_free(params);
  if (!ok) {
    std::string detail = ossl::drain_errors();
    return fail(EACCES, SSX_REASON_INTERNAL, "cannot make an agent key (" + detail + ")");
  }
  return ossl::UniquePtr<EVP_PKEY>(made);
}

std::optional<Failure> take_agent_failure() {
  std::optional<Failure> out = std::move(t_failure);
  t_failure.reset();
  return out;
}

void clear_agent_failure() {
  t_failure.reset();
}

}  // namespace ssx::tls

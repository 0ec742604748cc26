// SPDX-License-Identifier: Apache-2.0
#include "agentd/keystore.hpp"

#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cerrno>

#include "agentd/pkcs11.hpp"
#include "base/text.hpp"
#include "policy/policy.hpp"
#include "policy/values.hpp"

namespace ssx::cli::agent_daemon {
namespace {

Result<std::shared_ptr<KeyPair>> load_pair(const policy::KeyEntry &entry) {
  auto pair = std::make_shared<KeyPair>();
  ossl::UniquePtr<BIO> cert_bio(BIO_new_file(entry.certificate.c_str(), "r"));
  if (!cert_bio) {
    ERR_clear_error();
    return fail(EACCES, "key " + base::quote(entry.name) + ": cannot read certificate " +
                            base::quote(entry.certificate));
  }
  ossl::UniquePtr<BIO> out(BIO_new(BIO_s_mem()));
  bool leaf = true;
  while (ossl::UniquePtr<X509> cert{PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)}) {
    if (leaf) {
      unsigned int n = 0;
      X509_digest(cert.get(), EVP_sha256(), pair->certificate.data(), &n);
      leaf = false;
    }
    PEM_write_bio_X509(out.get(), cert.get());
  }
  ERR_clear_error();
  char *data = nullptr;
  const long n = BIO_get_mem_data(out.get(), &data);
  if (leaf || n <= 0) {
    return fail(EINVAL, "key " + base::quote(entry.name) + ": certificate " +
                            base::quote(entry.certificate) + " holds no certificate");
  }
  pair->chain_pem.assign(data, static_cast<std::size_t>(n));
  if (pair->chain_pem.size() > agent::kMaxChain) {
    return fail(EFBIG, "key " + base::quote(entry.name) + ": certificate chain is larger than " +
                           std::to_string(agent::kMaxChain) + " bytes");
  }
  if (entry.private_key.rfind("pkcs11:", 0) == 0) {
    auto key = load_pkcs11_key(entry.private_key);
    if (!key)
      return fail(key.error().code, "key " + base::quote(entry.name) + ": " + key.error().message);
    pair->key = std::move(*key);
    // The token's key must be the certificate's: compare the public halves.
    ossl::UniquePtr<BIO> again(BIO_new_file(entry.certificate.c_str(), "r"));
    ossl::UniquePtr<X509> leaf(again ? PEM_read_bio_X509(again.get(), nullptr, nullptr, nullptr)
                                     : nullptr);
    if (!leaf || X509_check_private_key(leaf.get(), pair->key.get()) != 1) {
      ERR_clear_error();
      return fail(EKEYREJECTED, "key " + base::quote(entry.name) + ": the token's key " +
                                    base::quote(entry.private_key) +
                                    " does not match certificate " +
                                    base::quote(entry.certificate));
    }
    return pair;
  }
  ossl::UniquePtr<BIO> key_bio(BIO_new_file(entry.private_key.c_str(), "r"));
  if (key_bio) {
    pair->key.reset(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  }
  ERR_clear_error();
  if (!pair->key) {
    return fail(EACCES, "key " + base::quote(entry.name) + ": cannot load private key " +
                            base::quote(entry.private_key));
  }
  return pair;
}

std::string client_text(const Client &c) {
  return "uid " + std::to_string(c.uid) + " (" + c.user + ")";
}

}  // namespace

Result<std::shared_ptr<const KeySet>> KeySet::load(const std::string &path,
                                                   const KeySet *previous) {
  policy::LoadOptions options;
  options.check_keys = true;  // users exist, every key matches its certificate
  auto loaded = policy::load_policy_file(path, options);
  if (!loaded) return loaded.error();
  auto set = std::make_shared<KeySet>();
  set->files_.push_back(path);
  for (const policy::KeyEntry &entry : loaded->keys) {
    HeldKey held;
    held.name = entry.name;
    for (const std::string &user : entry.users) {
      auto uid = policy::resolve_key_user(user);
      if (!uid)
        return fail(EINVAL, path + ": key " + base::quote(entry.name) + ": " + uid.error().message);
      held.uids.push_back(*uid);
      held.user_names.push_back(user);
    }
    held.programs = entry.programs;
    auto pair = load_pair(entry);
    if (!pair) return fail(pair.error().code, path + ": " + pair.error().message);
    held.current = std::move(*pair);
    if (previous != nullptr) {
      if (auto it = previous->keys_.find(entry.name); it != previous->keys_.end()) {
        const HeldKey &old = it->second;
        held.previous =
            old.current->certificate == held.current->certificate ? old.previous : old.current;
      }
    }
    set->files_.push_back(entry.certificate);
    set->files_.push_back(entry.private_key);
    set->keys_.emplace(entry.name, std::move(held));
  }
  return std::shared_ptr<const KeySet>(std::move(set));
}

std::vector<std::string> KeySet::describe() const {
  auto fp = [](const KeyPair *pair) {
    if (pair == nullptr) return std::string("none");
    return "sha256:" + ossl::to_hex(pair->certificate.data(), 8) + "..";
  };
  auto list = [](const std::vector<std::string> &items, const char *empty) {
    if (items.empty()) return std::string(empty);
    std::string out;
    for (const auto &i : items) out += (out.empty() ? "" : ",") + i;
    return out;
  };
  std::vector<std::string> out;
  for (const auto &[name, key] : keys_) {
    out.push_back(name + " certificate=" + fp(key.current.get()) +
                  " previous=" + fp(key.previous.get()) + " users=" + list(key.user_names, "root") +
                  " programs=" + list(key.programs, "any"));
  }
  return out;
}

Result<const HeldKey *> KeySet::authorise(const Client &client, const std::string &name) const {
  auto it = keys_.find(name);
  if (it == keys_.end()) {
    return fail(EACCES, "no key " + base::quote(name) + " in the agent's policy");
  }
  const HeldKey &key = it->second;
  const bool user_ok =
      client.uid == 0 || std::find(key.uids.begin(), key.uids.end(), client.uid) != key.uids.end();
  if (!user_ok) {
    return fail(EACCES, client_text(client) + " may not use key " + base::quote(name));
  }
  if (!key.programs.empty() &&
      std::find(key.programs.begin(), key.programs.end(), client.program) == key.programs.end()) {
    return fail(EACCES, "program " + base::quote(client.program.empty() ? "?" : client.program) +
                            " of " + client_text(client) + " may not use key " + base::quote(name));
  }
  return &key;
}

Result<agent::SignResponse> KeySet::sign(const HeldKey &key,
                                         const agent::SignRequest &request) const {
  const KeyPair *pair = nullptr;
  agent::SignResponse response;
  if (key.current->certificate == request.certificate) {
    pair = key.current.get();
  } else if (key.previous && key.previous->certificate == request.certificate) {
    pair = key.previous.get();
    response.rotated = true;
  } else {
    return fail(ESTALE, "the certificate the client presents is not (or no longer) key " +
                            base::quote(key.name) + "'s");
  }
  EVP_PKEY *pkey = pair->key.get();
  const bool ec = EVP_PKEY_is_a(pkey, "EC") == 1;
  const bool rsa = EVP_PKEY_is_a(pkey, "RSA") == 1;
  if ((request.scheme == agent::Scheme::ecdsa && !ec) ||
      (request.scheme != agent::Scheme::ecdsa && !rsa)) {
    return fail(EINVAL, "key " + base::quote(key.name) + " cannot make " +
                            std::string(agent::to_string(request.scheme)) + " signatures");
  }
  const EVP_MD *md = request.hash == agent::Hash::sha256   ? EVP_sha256()
                     : request.hash == agent::Hash::sha384 ? EVP_sha384()
                                                           : EVP_sha512();
  ossl::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(pkey, nullptr));
  bool ok = ctx && EVP_PKEY_sign_init(ctx.get()) == 1 &&
            EVP_PKEY_CTX_set_signature_md(ctx.get(), md) == 1;
  if (ok && rsa) {
    const bool pss = request.scheme == agent::Scheme::rsa_pss;
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx.get(), pss ? RSA_PKCS1_PSS_PADDING : RSA_PKCS1_PADDING) ==
             1 &&
         (!pss || EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx.get(), RSA_PSS_SALTLEN_DIGEST) == 1);
  }
  std::size_t len = 0;
  ok = ok &&
       EVP_PKEY_sign(ctx.get(), nullptr, &len, request.digest.data(), request.digest.size()) == 1 &&
       len <= agent::kMaxSignature;
  if (ok) {
    response.signature.resize(len);
    ok = EVP_PKEY_sign(ctx.get(), response.signature.data(), &len, request.digest.data(),
                       request.digest.size()) == 1;
    response.signature.resize(len);
  }
  if (!ok) {
    const std::string detail = ossl::drain_errors();
    return fail(EIO, "key " + base::quote(key.name) + " could not sign (" + detail + ")");
  }
  return response;
}

}  // namespace ssx::cli::agent_daemon

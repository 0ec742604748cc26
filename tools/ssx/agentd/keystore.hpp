// SPDX-License-Identifier: Apache-2.0
// tools/ssx/agentd/keystore.hpp — the keys `ssx agent` holds, loaded from the policy's [[key]]
// tables, and what it does with them: authorise a client, serve a chain, sign a digest.
//
// A KeySet is immutable once loaded; a reload builds a whole new one (the policy loaded with
// LoadOptions::check_keys, every key file read and matched with its certificate) and the server
// swaps it in, so a half-written rotation (a certificate without its key) fails the load and the
// last good set stays. For each key whose certificate changed, the new set keeps the old pair as
// |previous|, so handshakes that started with the old certificate still get their signature, and
// the answer tells the client to rebuild (SignResponse::rotated).
//
// Thread safety: a KeySet may be read from any thread.

#ifndef SSX_TOOLS_SSX_AGENTD_KEYSTORE_HPP
#define SSX_TOOLS_SSX_AGENTD_KEYSTORE_HPP

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/protocol.hpp"
#include "ossl/ossl.hpp"
#include "ssx/result.hpp"

namespace ssx::cli::agent_daemon {

struct KeyPair {
  agent::Fingerprint certificate{};
  std::string chain_pem;  // certificates only, leaf first
  ossl::UniquePtr<EVP_PKEY> key;
};

struct HeldKey {
  std::string name;
  std::shared_ptr<const KeyPair> current;
  std::shared_ptr<const KeyPair> previous;  // until the next rotation; may be null
  std::vector<uid_t> uids;                  // empty = root only
  std::vector<std::string> user_names;      // as written, for messages
  std::vector<std::string> programs;        // empty = any program
};

// Client is who is on the other end of a connection, as the kernel says.
struct Client {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  std::string user;     // account name of |uid|, or the number
  std::string program;  // /proc/PID/exe target, "" if unreadable
};

class KeySet {
 public:
  // load reads the policy at |path| with its [[key]] tables and loads every key. |previous|
  // (may be null) is the set in force, whose pairs become |previous| where a certificate changed.
  static Result<std::shared_ptr<const KeySet>> load(const std::string &path,
                                                    const KeySet *previous);

  // files returns the policy file and every certificate and key file the set was read from.
  const std::vector<std::string> &files() const { return files_; }
  std::size_t size() const { return keys_.size(); }
  // describe returns one line per key: NAME certificate=sha256:HEX16.. previous=... users=...
  // programs=...
  std::vector<std::string> describe() const;

  // authorise checks that |client| may use key |name|: the key (EACCES "no key "NAME"" when
  // missing) lists the client's uid (root always may) and, when it lists programs, the client's
  // program. The failure message is what the application sees.
  Result<const HeldKey *> authorise(const Client &client, const std::string &name) const;

  // sign signs |request|'s digest with the pair whose certificate it names.
  Result<agent::SignResponse> sign(const HeldKey &key, const agent::SignRequest &request) const;

 private:
  std::map<std::string, HeldKey, std::less<>> keys_;
  std::vector<std::string> files_;
};

}  // namespace ssx::cli::agent_daemon

#endif  // SSX_TOOLS_SSX_AGENTD_KEYSTORE_HPP

// SPDX-License-Identifier: Apache-2.0
#include "agentd/pkcs11.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include "base/text.hpp"

#if SSX_HAVE_LIBP11
#include <libp11.h>
#endif

namespace ssx::cli::agent_daemon {

#if SSX_HAVE_LIBP11
namespace {

struct Uri {
  std::string token, object, id, module, pin;
  bool has_object = false, has_id = false;
};

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string decode(std::string_view v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '%' && i + 2 < v.size() && hex(v[i + 1]) >= 0 && hex(v[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(v[i + 1]) * 16 + hex(v[i + 2])));
      i += 2;
    } else {
      out.push_back(v[i]);
    }
  }
  return out;
}

Result<Uri> parse(const std::string &uri) {
  Uri out;
  std::string_view rest = std::string_view(uri).substr(7);  // "pkcs11:"
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto each = [](std::string_view text, char sep, auto &&f) {
    while (!text.empty()) {
      const auto end = text.find(sep);
      const std::string_view part = text.substr(0, end);
      const auto eq = part.find('=');
      if (eq != std::string_view::npos) f(part.substr(0, eq), decode(part.substr(eq + 1)));
      if (end == std::string_view::npos) break;
      text = text.substr(end + 1);
    }
  };
  each(rest, ';', [&](std::string_view k, std::string v) {
    if (k == "token") {
      out.token = std::move(v);
    } else if (k == "object") {
      out.object = std::move(v);
      out.has_object = true;
    } else if (k == "id") {
      out.id = std::move(v);
      out.has_id = true;
    }
  });
  std::string pin_source;
  each(query, '&', [&](std::string_view k, std::string v) {
    if (k == "module-path") {
      out.module = std::move(v);
    } else if (k == "pin-value") {
      out.pin = std::move(v);
    } else if (k == "pin-source") {
      pin_source = std::move(v);
    }
  });
  if (out.module.empty()) {
    return fail(EINVAL, "PKCS#11 URI " + base::quote(uri) +
                            " needs module-path= (the PKCS#11 module to load)");
  }
  if (!pin_source.empty()) {
    if (pin_source.rfind("file:", 0) != 0) {
      return fail(EINVAL, "PKCS#11 URI " + base::quote(uri) + ": pin-source must be file:PATH");
    }
    std::ifstream in(pin_source.substr(5));
    if (!in || !std::getline(in, out.pin)) {
      return fail(EACCES, "PKCS#11 URI " + base::quote(uri) + ": cannot read the PIN from " +
                              base::quote(pin_source.substr(5)));
    }
  }
  return out;
}

struct Module {
  PKCS11_CTX *ctx = nullptr;
  PKCS11_SLOT *slots = nullptr;
  unsigned int nslots = 0;
};

std::map<std::string, Module> &modules() {
  static std::map<std::string, Module> m;  // never unloaded: see pkcs11.hpp
  return m;
}

std::string p11_error() {
  std::string detail = ossl::drain_errors();
  return detail.empty() ? "" : " (" + detail + ")";
}

}  // namespace

bool pkcs11_available() {
  return true;
}

Result<ossl::UniquePtr<EVP_PKEY>> load_pkcs11_key(const std::string &uri_text) {
  auto uri = parse(uri_text);
  if (!uri) return uri.error();
  const std::string where = "PKCS#11 URI " + base::quote(uri_text);
  Module &module = modules()[uri->module];
  if (module.ctx == nullptr) {
    module.ctx = PKCS11_CTX_new();
    if (module.ctx == nullptr || PKCS11_CTX_load(module.ctx, uri->module.c_str()) != 0) {
      if (module.ctx != nullptr) PKCS11_CTX_free(module.ctx);
      module.ctx = nullptr;
      return fail(EACCES, where + ": cannot load module " + base::quote(uri->module) + p11_error());
    }
  }
  // Slots are enumerated again at every load: tokens come and go.
  if (module.slots != nullptr) PKCS11_release_all_slots(module.ctx, module.slots, module.nslots);
  module.slots = nullptr;
  if (PKCS11_enumerate_slots(module.ctx, &module.slots, &module.nslots) != 0) {
    return fail(EACCES, where + ": cannot list the module's slots" + p11_error());
  }
  PKCS11_SLOT *slot = nullptr;
  for (unsigned int i = 0; i < module.nslots; ++i) {
    PKCS11_SLOT *s = &module.slots[i];
    if (s->token == nullptr || !s->token->initialized) continue;
    if (uri->token.empty() || uri->token == s->token->label) {
      slot = s;
      break;
    }
  }
  if (slot == nullptr) {
    return fail(ENOENT, where + ": no token" +
                            (uri->token.empty() ? "" : " labelled " + base::quote(uri->token)));
  }
  int logged_in = 0;
  if (PKCS11_is_logged_in(slot, 0, &logged_in) != 0 || !logged_in) {
    if (PKCS11_login(slot, 0, uri->pin.empty() ? nullptr : uri->pin.c_str()) != 0) {
      return fail(EACCES, where + ": login to token " + base::quote(slot->token->label) +
                              " failed (wrong or missing PIN?)" + p11_error());
    }
  }
  PKCS11_KEY *keys = nullptr;
  unsigned int nkeys = 0;
  if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
    return fail(EACCES, where + ": cannot list the token's keys" + p11_error());
  }
  for (unsigned int i = 0; i < nkeys; ++i) {
    PKCS11_KEY *k = &keys[i];
    if (uri->has_object && (k->label == nullptr || uri->object != k->label)) continue;
    if (uri->has_id &&
        (k->id_len != uri->id.size() || std::memcmp(k->id, uri->id.data(), k->id_len) != 0)) {
      continue;
    }
    ossl::UniquePtr<EVP_PKEY> key(PKCS11_get_private_key(k));
    if (!key) return fail(EACCES, where + ": cannot use the key" + p11_error());
    return key;
  }
  return fail(ENOENT, where + ": no such private key in token " + base::quote(slot->token->label));
}

#else

bool pkcs11_available() {
  return false;
}

Result<ossl::UniquePtr<EVP_PKEY>> load_pkcs11_key(const std::string &uri) {
  return fail(EOPNOTSUPP, "PKCS#11 URI " + base::quote(uri) +
                              ": this ssx was built without PKCS#11 support (libp11)");
}

#endif

}  // namespace ssx::cli::agent_daemon

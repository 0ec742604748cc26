// SPDX-License-Identifier: Apache-2.0
#include "agent/protocol.hpp"

#include <algorithm>
#include <cerrno>

namespace ssx::agent {
namespace {

class Writer {
 public:
  Writer() { out_.resize(kFrameHeader); }
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::size_t v) {
    out_.push_back(static_cast<std::uint8_t>(v >> 8));
    out_.push_back(static_cast<std::uint8_t>(v));
  }
  void u32(std::size_t v) {
    for (int shift = 24; shift >= 0; shift -= 8)
      out_.push_back(static_cast<std::uint8_t>(v >> shift));
  }
  void bytes(const void *data, std::size_t n) {
    const auto *p = static_cast<const std::uint8_t *>(data);
    out_.insert(out_.end(), p, p + n);
  }
  void str8(std::string_view s) {
    u8(static_cast<std::uint8_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<std::uint8_t> finish() {
    const std::size_t body = out_.size() - kFrameHeader;
    for (std::size_t i = 0; i < kFrameHeader; ++i) {
      out_[i] = static_cast<std::uint8_t>(body >> (8 * (kFrameHeader - 1 - i)));
    }
    return std::move(out_);
  }

 private:
  std::vector<std::uint8_t> out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> in) : in_(in) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return in_[pos_++];
  }
  std::size_t u16() {
    if (!need(2)) return 0;
    const std::size_t v = (std::size_t{in_[pos_]} << 8) | in_[pos_ + 1];
    pos_ += 2;
    return v;
  }
  std::size_t u32() {
    if (!need(4)) return 0;
    std::size_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | in_[pos_ + static_cast<std::size_t>(i)];
    pos_ += 4;
    return v;
  }
  std::span<const std::uint8_t> take(std::size_t n) {
    if (!need(n)) return {};
    auto out = in_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::string str8(std::size_t max) {
    const std::size_t n = u8();
    if (n > max) {
      ok_ = false;
      return {};
    }
    auto b = take(n);
    return std::string(b.begin(), b.end());
  }

 private:
  bool need(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    return true;
  }
  std::span<const std::uint8_t> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

Failure malformed(const std::string &why) {
  return fail(EINVAL, why);
}

bool valid_rule_name(std::string_view rule) {
  return rule.size() <= kMaxRuleName &&
         std::all_of(rule.begin(), rule.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool valid_scheme(std::uint8_t v) {
  return v >= 1 && v <= 3;
}
bool valid_hash(std::uint8_t v) {
  return v >= 1 && v <= 3;
}

Result<void> check_names(std::string_view key, std::string_view rule) {
  if (!valid_key_name(key)) return malformed("key name is not valid");
  if (!valid_rule_name(rule)) return malformed("rule name is not valid");
  return {};
}

}  // namespace

std::size_t digest_size(Hash hash) {
  switch (hash) {
    case Hash::sha256:
      return 32;
    case Hash::sha384:
      return 48;
    case Hash::sha512:
      return 64;
  }
  return 0;
}

std::string_view to_string(Scheme scheme) {
  switch (scheme) {
    case Scheme::ecdsa:
      return "ecdsa";
    case Scheme::rsa_pss:
      return "rsa-pss";
    case Scheme::rsa_pkcs1:
      return "rsa-pkcs1";
  }
  return "?";
}

std::string_view to_string(Hash hash) {
  switch (hash) {
    case Hash::sha256:
      return "sha256";
    case Hash::sha384:
      return "sha384";
    case Hash::sha512:
      return "sha512";
  }
  return "?";
}

int to_errno(ErrorCode code) {
  switch (code) {
    case ErrorCode::refused:
    case ErrorCode::no_such_key:
      return EACCES;
    case ErrorCode::malformed:
      return EINVAL;
    case ErrorCode::failed:
      return EIO;
    case ErrorCode::stale:
      return ESTALE;
    case ErrorCode::busy:
      return EAGAIN;
  }
  return EIO;
}

bool valid_key_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxKeyName) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

Result<std::vector<std::uint8_t>> encode(const ChainRequest &request) {
  if (auto r = check_names(request.key, request.rule); !r) return r.error();
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::chain_request));
  w.str8(request.key);
  w.str8(request.rule);
  return w.finish();
}

Result<std::vector<std::uint8_t>> encode(const SignRequest &request) {
  if (auto r = check_names(request.key, request.rule); !r) return r.error();
  if (request.digest.size() != digest_size(request.hash)) {
    return malformed("digest length does not match the hash");
  }
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::sign_request));
  w.str8(request.key);
  w.str8(request.rule);
  w.u8(static_cast<std::uint8_t>(request.scheme));
  w.u8(static_cast<std::uint8_t>(request.hash));
  w.bytes(request.certificate.data(), request.certificate.size());
  w.u8(static_cast<std::uint8_t>(request.digest.size()));
  w.bytes(request.digest.data(), request.digest.size());
  return w.finish();
}

Result<std::vector<std::uint8_t>> encode(const ChainResponse &response) {
  if (response.chain_pem.empty() || response.chain_pem.size() > kMaxChain) {
    return malformed("certificate chain is empty or too large");
  }
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::chain_response));
  w.bytes(response.certificate.data(), response.certificate.size());
  w.u32(response.chain_pem.size());
  w.bytes(response.chain_pem.data(), response.chain_pem.size());
  return w.finish();
}

Result<std::vector<std::uint8_t>> encode(const SignResponse &response) {
  if (response.signature.empty() || response.signature.size() > kMaxSignature) {
    return malformed("signature is empty or too large");
  }
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::sign_response));
  w.u8(response.rotated ? 1 : 0);
  w.u16(response.signature.size());
  w.bytes(response.signature.data(), response.signature.size());
  return w.finish();
}

std::vector<std::uint8_t> encode(const ErrorResponse &response) {
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::error_response));
  w.u8(static_cast<std::uint8_t>(response.code));
  std::string message = response.message.substr(0, kMaxMessage);
  // Printable only: the library puts this text in ssx_last_error().
  for (char &c : message) {
    if (c < 0x20 || c == 0x7f) c = '?';
  }
  w.str8(message);
  return w.finish();
}

std::vector<std::uint8_t> encode_status_request() {
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::status_request));
  return w.finish();
}

std::vector<std::uint8_t> encode_status_response(std::string_view text) {
  text = text.substr(0, kMaxStatus);
  Writer w;
  w.u8(kVersion);
  w.u8(static_cast<std::uint8_t>(Type::status_response));
  w.u32(text.size());
  w.bytes(text.data(), text.size());
  return w.finish();
}

Result<std::size_t> frame_length(std::span<const std::uint8_t, kFrameHeader> header,
                                 std::size_t max_body) {
  std::size_t n = 0;
  for (std::uint8_t b : header) n = (n << 8) | b;
  if (n == 0) return fail(EINVAL, "empty frame");
  if (n > max_body) {
    return fail(EMSGSIZE, "frame of " + std::to_string(n) + " bytes exceeds the limit of " +
                              std::to_string(max_body));
  }
  return n;
}

Result<Request> decode_request(std::span<const std::uint8_t> body) {
  if (body.size() > kMaxRequestBody) return malformed("request too large");
  Reader r(body);
  const std::uint8_t version = r.u8();
  if (!r.ok()) return malformed("empty request");
  if (version != kVersion) return malformed("unsupported version " + std::to_string(version));
  const std::uint8_t type = r.u8();
  Request out;
  if (type == static_cast<std::uint8_t>(Type::chain_request)) {
    out.type = Type::chain_request;
    out.chain.key = r.str8(kMaxKeyName);
    out.chain.rule = r.str8(kMaxRuleName);
    if (!r.ok()) return malformed("truncated chain request");
    if (auto c = check_names(out.chain.key, out.chain.rule); !c) return c.error();
  } else if (type == static_cast<std::uint8_t>(Type::sign_request)) {
    out.type = Type::sign_request;
    SignRequest &s = out.sign;
    s.key = r.str8(kMaxKeyName);
    s.rule = r.str8(kMaxRuleName);
    const std::uint8_t scheme = r.u8();
    const std::uint8_t hash = r.u8();
    auto fp = r.take(kFingerprint);
    const std::size_t n = r.u8();
    auto digest = r.take(n);
    if (!r.ok()) return malformed("truncated sign request");
    if (auto c = check_names(s.key, s.rule); !c) return c.error();
    if (!valid_scheme(scheme))
      return malformed("unknown signature scheme " + std::to_string(scheme));
    if (!valid_hash(hash)) return malformed("unknown hash " + std::to_string(hash));
    s.scheme = static_cast<Scheme>(scheme);
    s.hash = static_cast<Hash>(hash);
    if (n != digest_size(s.hash)) return malformed("digest length does not match the hash");
    std::copy(fp.begin(), fp.end(), s.certificate.begin());
    s.digest.assign(digest.begin(), digest.end());
  } else if (type == static_cast<std::uint8_t>(Type::status_request)) {
    if (!r.ok()) return malformed("truncated request");
    out.type = Type::status_request;
  } else {
    if (!r.ok()) return malformed("truncated request");
    return malformed("unknown request type " + std::to_string(type));
  }
  if (!r.done()) return malformed("trailing bytes after the request");
  return out;
}

Result<Response> decode_response(std::span<const std::uint8_t> body) {
  if (body.size() > kMaxResponseBody) return malformed("response too large");
  Reader r(body);
  const std::uint8_t version = r.u8();
  if (!r.ok()) return malformed("empty response");
  if (version != kVersion) return malformed("unsupported version " + std::to_string(version));
  const std::uint8_t type = r.u8();
  Response out;
  if (type == static_cast<std::uint8_t>(Type::chain_response)) {
    out.type = Type::chain_response;
    auto fp = r.take(kFingerprint);
    const std::size_t n = r.u32();
    if (n == 0 || n > kMaxChain) return malformed("chain length out of bounds");
    auto pem = r.take(n);
    if (!r.ok()) return malformed("truncated chain response");
    std::copy(fp.begin(), fp.end(), out.chain.certificate.begin());
    out.chain.chain_pem.assign(pem.begin(), pem.end());
  } else if (type == static_cast<std::uint8_t>(Type::sign_response)) {
    out.type = Type::sign_response;
    const std::uint8_t flags = r.u8();
    const std::size_t n = r.u16();
    if (n == 0 || n > kMaxSignature) return malformed("signature length out of bounds");
    auto sig = r.take(n);
    if (!r.ok()) return malformed("truncated sign response");
    if ((flags & ~1U) != 0) return malformed("unknown flags");
    out.sign.rotated = (flags & 1U) != 0;
    out.sign.signature.assign(sig.begin(), sig.end());
  } else if (type == static_cast<std::uint8_t>(Type::error_response)) {
    out.type = Type::error_response;
    const std::uint8_t code = r.u8();
    out.error.message = r.str8(kMaxMessage);
    if (!r.ok()) return malformed("truncated error response");
    if (code < 1 || code > 6) return malformed("unknown error code " + std::to_string(code));
    out.error.code = static_cast<ErrorCode>(code);
    for (char c : out.error.message) {
      if (c < 0x20 || c == 0x7f) return malformed("control character in error message");
    }
  } else if (type == static_cast<std::uint8_t>(Type::status_response)) {
    out.type = Type::status_response;
    const std::size_t n = r.u32();
    if (n > kMaxStatus) return malformed("status length out of bounds");
    auto text = r.take(n);
    if (!r.ok()) return malformed("truncated status response");
    out.status.assign(text.begin(), text.end());
  } else {
    if (!r.ok()) return malformed("truncated response");
    return malformed("unknown response type " + std::to_string(type));
  }
  if (!r.done()) return malformed("trailing bytes after the response");
  return out;
}

}  // namespace ssx::agent

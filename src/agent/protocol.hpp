// SPDX-License-Identifier: Apache-2.0
// agent/protocol.hpp — the wire format between the library and `ssx agent` (docs/agent.md).
//
// A connection carries requests from the library and one response to each, in order. Every
// message is a frame: a 4-byte big-endian body length, then the body. A body starts with the
// format version (kVersion) and a message type; every field after that has a fixed size or a
// length prefix, and every length is bounded (the constants below). A body that does not parse
// exactly (short, long, a field out of bounds, trailing bytes) is malformed: the agent answers
// with an error and closes the connection.
//
// Key bytes never cross the socket: the agent sends certificates (public) and signatures over a
// digest the library computed.
//
// This file is pure: no I/O, no OpenSSL. decode_* take untrusted bytes (fuzzed by
// tests/fuzz/agent_protocol_fuzz.cpp) and never read outside them.
//
// Thread safety: every function is safe to call from any thread.

#ifndef SSX_AGENT_PROTOCOL_HPP
#define SSX_AGENT_PROTOCOL_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ssx/result.hpp"

namespace ssx::agent {

inline constexpr std::uint8_t kVersion = 1;
inline constexpr std::size_t kFrameHeader = 4;
inline constexpr std::size_t kMaxRequestBody = 1024;     // a request body, header excluded
inline constexpr std::size_t kMaxResponseBody = 262144;  // 256 KiB: a response body (a chain)
inline constexpr std::size_t kMaxKeyName = 64;           // [A-Za-z0-9._-]
inline constexpr std::size_t kMaxRuleName = 128;         // printable ASCII
inline constexpr std::size_t kMaxDigest = 64;            // SHA-512
inline constexpr std::size_t kMaxSignature = 1024;       // RSA 8192
inline constexpr std::size_t kMaxChain = 204800;         // 200 KiB of PEM text
inline constexpr std::size_t kMaxMessage = 255;          // error text
inline constexpr std::size_t kFingerprint = 32;          // SHA-256 of the leaf's DER
inline constexpr std::size_t kMaxStatus = 65536;         // 64 KiB of status text

enum class Type : std::uint8_t {
  chain_request = 0x01,
  sign_request = 0x02,
  status_request = 0x03,  // `ssx agent status`; answered to root and the agent's own uid only
  chain_response = 0x81,
  sign_response = 0x82,
  status_response = 0x83,
  error_response = 0xff,
};

// Scheme is the signature the library asks for.
enum class Scheme : std::uint8_t { ecdsa = 1, rsa_pss = 2, rsa_pkcs1 = 3 };
// Hash names the digest algorithm that produced the digest.
enum class Hash : std::uint8_t { sha256 = 1, sha384 = 2, sha512 = 3 };

// digest_size returns the digest length of |hash| (32, 48 or 64).
std::size_t digest_size(Hash hash);
std::string_view to_string(Scheme scheme);
std::string_view to_string(Hash hash);

// ErrorCode is what an error response says went wrong; errno() maps it for the application.
enum class ErrorCode : std::uint8_t {
  refused = 1,      // the policy does not allow this client this key (EACCES)
  no_such_key = 2,  // no [[key]] of that name (EACCES)
  malformed = 3,    // the request did not parse (EINVAL); the agent closes the connection
  failed = 4,       // the key could not sign (EIO)
  stale = 5,        // the certificate named is no longer served for that key (ESTALE)
  busy = 6,         // too many connections (EAGAIN)
};
int to_errno(ErrorCode code);

using Fingerprint = std::array<std::uint8_t, kFingerprint>;

struct ChainRequest {
  std::string key;
  std::string rule;  // the rule the client applies; informational (for the audit log)
};

struct SignRequest {
  std::string key;
  std::string rule;
  Scheme scheme = Scheme::ecdsa;
  Hash hash = Hash::sha256;
  Fingerprint certificate{};  // which certificate of |key| the signature is for
  std::vector<std::uint8_t> digest;
};

struct ChainResponse {
  Fingerprint certificate{};  // the leaf's
  std::string chain_pem;      // leaf first
};

struct SignResponse {
  bool rotated = false;  // the certificate signed for is no longer the key's current one
  std::vector<std::uint8_t> signature;
};

struct ErrorResponse {
  ErrorCode code = ErrorCode::failed;
  std::string message;
};

// Request is what decode_request yields: exactly one of the two is meaningful, per |type|.
struct Request {
  Type type = Type::chain_request;
  ChainRequest chain;
  SignRequest sign;
};

struct Response {
  Type type = Type::error_response;
  ChainResponse chain;
  SignResponse sign;
  ErrorResponse error;
  std::string status;  // status_response: text, one line per fact
};

// valid_key_name reports whether |name| may name a [[key]]: 1 to kMaxKeyName bytes of
// [A-Za-z0-9._-].
bool valid_key_name(std::string_view name);

// encode_* return a whole frame (header and body). Fields beyond their bounds are EINVAL.
Result<std::vector<std::uint8_t>> encode(const ChainRequest &request);
Result<std::vector<std::uint8_t>> encode(const SignRequest &request);
Result<std::vector<std::uint8_t>> encode(const ChainResponse &response);
Result<std::vector<std::uint8_t>> encode(const SignResponse &response);
std::vector<std::uint8_t> encode(const ErrorResponse &response);  // message truncated to bound
std::vector<std::uint8_t> encode_status_request();
std::vector<std::uint8_t> encode_status_response(std::string_view text);  // truncated to bound

// frame_length reads a frame header (4 bytes): the body length. 0 or above |max_body| is EINVAL
// (EMSGSIZE for too large).
Result<std::size_t> frame_length(std::span<const std::uint8_t, kFrameHeader> header,
                                 std::size_t max_body);

// decode_request parses a request body (without its header). EINVAL with a short description
// ("unsupported version 7", "key name is not valid", "trailing bytes") when it is malformed.
Result<Request> decode_request(std::span<const std::uint8_t> body);
// decode_response parses a response body.
Result<Response> decode_response(std::span<const std::uint8_t> body);

}  // namespace ssx::agent

#endif  // SSX_AGENT_PROTOCOL_HPP

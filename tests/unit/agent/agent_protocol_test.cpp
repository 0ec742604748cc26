// SPDX-License-Identifier: Apache-2.0
// agent/protocol: every message round-trips, and malformed bodies are refused, never over-read.

#include <gtest/gtest.h>

#include <cerrno>

#include "agent/protocol.hpp"

namespace ssx::agent {
namespace {

std::span<const std::uint8_t> body_of(const std::vector<std::uint8_t> &frame) {
  return std::span<const std::uint8_t>(frame).subspan(kFrameHeader);
}

SignRequest sample_sign() {
  SignRequest r;
  r.key = "host";
  r.rule = "web";
  r.scheme = Scheme::rsa_pss;
  r.hash = Hash::sha384;
  r.certificate.fill(7);
  r.digest.assign(48, 0x42);
  return r;
}

TEST(AgentProtocol, RequestsRoundTrip) {
  auto chain = encode(ChainRequest{"host.example_1", "defaults"});
  ASSERT_TRUE(chain);
  auto length =
      frame_length(std::span<const std::uint8_t, kFrameHeader>(chain->data(), 4), kMaxRequestBody);
  ASSERT_TRUE(length);
  EXPECT_EQ(*length, chain->size() - kFrameHeader);
  auto decoded = decode_request(body_of(*chain));
  ASSERT_TRUE(decoded) << decoded.error().message;
  EXPECT_EQ(decoded->type, Type::chain_request);
  EXPECT_EQ(decoded->chain.key, "host.example_1");
  EXPECT_EQ(decoded->chain.rule, "defaults");

  auto sign = encode(sample_sign());
  ASSERT_TRUE(sign);
  auto s = decode_request(body_of(*sign));
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->type, Type::sign_request);
  EXPECT_EQ(s->sign.scheme, Scheme::rsa_pss);
  EXPECT_EQ(s->sign.hash, Hash::sha384);
  EXPECT_EQ(s->sign.digest, sample_sign().digest);
  EXPECT_EQ(s->sign.certificate, sample_sign().certificate);
}

TEST(AgentProtocol, ResponsesRoundTrip) {
  auto chain = encode(ChainResponse{Fingerprint{}, "-----BEGIN CERTIFICATE-----\n"});
  ASSERT_TRUE(chain);
  auto c = decode_response(body_of(*chain));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->chain.chain_pem, "-----BEGIN CERTIFICATE-----\n");
  auto sig = encode(SignResponse{true, std::vector<std::uint8_t>(71, 1)});
  ASSERT_TRUE(sig);
  auto g = decode_response(body_of(*sig));
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->sign.rotated);
  EXPECT_EQ(g->sign.signature.size(), 71u);
  auto err = decode_response(body_of(encode(ErrorResponse{ErrorCode::refused, "no\nway"})));
  ASSERT_TRUE(err);
  EXPECT_EQ(err->error.code, ErrorCode::refused);
  EXPECT_EQ(err->error.message, "no?way");  // control characters never reach ssx_last_error
}

TEST(AgentProtocol, EncodeRefusesOutOfBoundsFields) {
  EXPECT_FALSE(encode(ChainRequest{"", ""}));
  EXPECT_FALSE(encode(ChainRequest{std::string(65, 'a'), ""}));
  EXPECT_FALSE(encode(ChainRequest{"bad/name", ""}));
  EXPECT_FALSE(encode(ChainRequest{"host", "tab\there"}));
  SignRequest s = sample_sign();
  s.digest.pop_back();
  EXPECT_FALSE(encode(s));
}

TEST(AgentProtocol, FrameLengthIsBounded) {
  const std::uint8_t zero[4] = {0, 0, 0, 0};
  const std::uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
  const std::uint8_t limit[4] = {0, 0, 4, 0};
  const std::uint8_t over[4] = {0, 0, 4, 1};
  EXPECT_EQ(frame_length(zero, kMaxRequestBody).error().code, EINVAL);
  EXPECT_EQ(frame_length(huge, kMaxRequestBody).error().code, EMSGSIZE);
  EXPECT_TRUE(frame_length(limit, kMaxRequestBody));
  EXPECT_EQ(frame_length(over, kMaxRequestBody).error().code, EMSGSIZE);
}

TEST(AgentProtocol, MalformedRequestsAreRefused) {
  auto good = *encode(sample_sign());
  std::vector<std::uint8_t> body(good.begin() + kFrameHeader, good.end());
  // Every truncation fails, and so does one trailing byte.
  for (std::size_t n = 0; n < body.size(); ++n) {
    EXPECT_FALSE(decode_request(std::span(body).first(n))) << n;
  }
  auto longer = body;
  longer.push_back(0);
  EXPECT_EQ(decode_request(longer).error().message, "trailing bytes after the request");
  auto version = body;
  version[0] = 2;
  EXPECT_EQ(decode_request(version).error().message, "unsupported version 2");
  auto type = body;
  type[1] = 0x7f;
  EXPECT_EQ(decode_request(type).error().message, "unknown request type 127");
  auto scheme = body;
  scheme[2 + 1 + 4 + 1 + 3] = 9;  // version, type, "host", "web", then the scheme
  EXPECT_EQ(decode_request(scheme).error().message, "unknown signature scheme 9");
  auto key_length = body;
  key_length[2] = 200;  // longer than kMaxKeyName
  EXPECT_FALSE(decode_request(key_length));
}

}  // namespace
}  // namespace ssx::agent

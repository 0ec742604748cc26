// SPDX-License-Identifier: Apache-2.0
// The state machine's table (SecureSocket::transition_allowed): the properties the rest of the
// code relies on, checked over every pair of states.

#include <gtest/gtest.h>

#include <vector>

#include "core/secure_socket.hpp"

namespace ssx::core {
namespace {

using State = SecureSocket::State;

const std::vector<State> kAll = {
    State::configured, State::listener,    State::connecting,  State::cleartext_connecting,
    State::sniffing,   State::handshaking, State::established, State::local,
    State::cleartext,  State::failed,
};

TEST(StateTable, StayingPutIsAlwaysAllowed) {
  for (State s : kAll) EXPECT_TRUE(SecureSocket::transition_allowed(s, s));
}

TEST(StateTable, NothingReturnsToConfigured) {
  for (State s : kAll) {
    if (s == State::configured) continue;
    EXPECT_FALSE(SecureSocket::transition_allowed(s, State::configured));
  }
}

TEST(StateTable, AListenerStaysAListenerAndFailedIsFinal) {
  for (State s : kAll) {
    if (s == State::listener || s == State::failed) continue;
    EXPECT_FALSE(SecureSocket::transition_allowed(State::listener, s));
    EXPECT_FALSE(SecureSocket::transition_allowed(State::failed, s));
  }
}

TEST(StateTable, CleartextIsOnlyReachedThroughTheFallbackPaths) {
  for (State s : kAll) {
    const bool fallback =
        s == State::sniffing || s == State::handshaking || s == State::cleartext_connecting;
    if (s == State::cleartext) continue;
    EXPECT_EQ(SecureSocket::transition_allowed(s, State::cleartext), fallback);
  }
}

TEST(StateTable, OnlyAHandshakeEstablishesTls) {
  for (State s : kAll) {
    if (s == State::established) continue;
    EXPECT_EQ(SecureSocket::transition_allowed(s, State::established), s == State::handshaking);
  }
}

}  // namespace
}  // namespace ssx::core

// SPDX-License-Identifier: Apache-2.0
// curl, an everyday HTTPS client, against an ssx server that answers one minimal HTTP/1.1
// request.

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>

#include "interop.hpp"

namespace ssx::test {
namespace {

constexpr const char *kBody = "hello over ssx\n";

// HttpOutcome is what the ssx HTTP server saw.
struct HttpOutcome {
  int accept_errno = 0;
  std::string accept_reason;
  std::string request;  // everything received, up to the end of the headers
  int recv_errno = 0;
  Info info;
};

// http_server serves one request on |listener| in a thread: reads the request head, answers
// 200 with kBody and Connection: close, then ends the stream with close_notify. A connection that
// sends no request gets no answer.
std::unique_ptr<BackgroundThread> http_server(int listener, HttpOutcome &out) {
  return std::make_unique<BackgroundThread>([listener, &out] {
    int fd = ssx_accept(listener, nullptr, nullptr);
    if (fd < 0) {
      out.accept_errno = errno;
      out.accept_reason = ssx_last_error();
      return;
    }
    Fd owned(fd);
    set_io_timeouts(fd);
    out.info = query(fd);
    bool eof = false;
    out.request = recv_until(fd, "\r\n\r\n", &out.recv_errno, &eof);
    if (out.request.find("\r\n\r\n") == std::string::npos) return;
    const std::string body = kBody;
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                                 std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                 body;
    EXPECT_TRUE(ssx_send_all(fd, response)) << last_error_text();
    EXPECT_EQ(ssx_shutdown(fd, SHUT_WR), 0) << last_error_text();
  });
}

class CurlTest : public InteropTest {
 protected:
  // curl fetches https://|host|:PORT/index.txt, |host| resolving to 127.0.0.1.
  CommandResult fetch(const std::string &host, const std::vector<std::string> &extra,
                      HttpOutcome &outcome) {
    Fd listener = bounded_listener();
    const std::string port = std::to_string(local_port(listener.get()));
    auto server = http_server(listener.get(), outcome);
    std::vector<std::string> argv = {"curl",         "--silent",  "--show-error",
                                     "--max-time",   "10",        "--cacert",
                                     pki_.ca_cert(), "--resolve", host + ":" + port + ":127.0.0.1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("https://" + host + ":" + port + "/index.txt");
    CommandResult result = run_command(argv, kPeerTimeout);
    server.reset();
    port_ = port;
    return result;
  }
  std::string port_;
};

TEST_F(CurlTest, FetchesTheBodyOverVerifiedTls13) {
  interop_policy();
  HttpOutcome outcome;
  CommandResult r = fetch("localhost", {"--tlsv1.3"}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, kBody);
  EXPECT_EQ(outcome.accept_errno, 0) << outcome.accept_reason;
  EXPECT_EQ(outcome.request.rfind("GET /index.txt HTTP/1.1\r\n", 0), 0u) << outcome.request;
  EXPECT_NE(outcome.request.find("\r\nHost: localhost:" + port_ + "\r\n"), std::string::npos)
      << outcome.request;
  ASSERT_TRUE(outcome.info);
  EXPECT_STREQ(outcome.info->version, "TLSv1.3");
}

TEST_F(CurlTest, ClientCertificateIsReportedWhenPolicyRequiresOne) {
  interop_policy("", "peer_authentication = \"required\"");
  HttpOutcome outcome;
  CommandResult r =
      fetch("localhost", {"--cert", client_creds_.cert, "--key", client_creds_.key}, outcome);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, kBody);
  ASSERT_TRUE(outcome.info);
  EXPECT_STREQ(outcome.info->peer_principal, "spiffe://ssx.test/client");
}

TEST_F(CurlTest, WrongHostNameFailsCurlsVerificationAndNoRequestIsSent) {
  interop_policy();
  HttpOutcome outcome;
  CommandResult r = fetch("wrong.example", {}, outcome);
  EXPECT_EQ(r.exit_code, 60) << r.output;  // CURLE_PEER_FAILED_VERIFICATION
  EXPECT_NE(r.output.find("wrong.example"), std::string::npos) << r.output;
  EXPECT_NE(r.output, kBody);
  // curl checks the name after the handshake, so ssx_accept may well succeed; either way not a
  // byte of the request reached the server.
  EXPECT_EQ(outcome.request, "") << outcome.request;
}

}  // namespace
}  // namespace ssx::test

// SPDX-License-Identifier: Apache-2.0
// tools/ssx/cmd_agent.cpp — `ssx agent`: holds the private keys of the policy's [[key]] tables
// and signs handshakes for the programs the policy allows (docs/agent.md).

#include <memory>
#include <string>

#include "agentd/server.hpp"
#include "command.hpp"
#include "policy/policy.hpp"

namespace ssx::cli {

void register_agent(CLI::App &app) {
  auto opts = std::make_shared<agent_daemon::ServerOptions>();
  CLI::App *cmd = app.add_subcommand(
      "agent", "hold the policy's [[key]] private keys and sign handshakes for allowed programs");
  cmd->add_option("--policy", opts->policy_path,
                  "policy file with the [[key]] tables (default: $SSX_POLICY, else "
                  "/etc/ssx/policy.toml)")
      ->type_name("FILE");
  cmd->add_option("--socket", opts->socket_path,
                  "AF_UNIX socket to serve (default: the policy's agent_socket, "
                  "/run/ssx/agent.sock)")
      ->type_name("PATH");
  cmd->add_option("--max-connections", opts->max_connections,
                  "connections served at once (default 4096)")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--metrics", opts->metrics,
                  "serve Prometheus metrics on HOST:PORT (GET /metrics; e.g. 127.0.0.1:9101)")
      ->type_name("HOST:PORT");
  auto status_socket = std::make_shared<std::string>();
  auto status_policy = std::make_shared<std::string>();
  CLI::App *status = cmd->add_subcommand(
      "status", "show the running agent's keys, connected clients and counters (root)");
  status->add_option("--socket", *status_socket, "the agent's socket (default: the policy's)")
      ->type_name("PATH");
  status->add_option("--policy", *status_policy, "policy naming agent_socket")->type_name("FILE");
  set_example(status, "  ssx agent status\n  ssx agent status --socket /run/ssx/agent.sock");
  status->callback([status_socket, status_policy] {
    std::string socket = *status_socket;
    if (socket.empty()) {
      const std::string path = status_policy->empty() ? policy::policy_path() : *status_policy;
      auto p = policy::load_policy_file(path);
      socket = p ? p->agent.socket : policy::AgentSettings{}.socket;
    }
    agent_daemon::print_status(socket);
  });
  set_example(cmd,
              "  ssx agent --policy /etc/ssx/policy.toml\n"
              "  ssx agent --metrics 127.0.0.1:9101\n"
              "  ssx agent status\n"
              "  ssx agent --socket /run/ssx/agent.sock");
  cmd->callback([opts, status] {
    if (status->parsed()) return;
    agent_daemon::ServerOptions o = *opts;
    if (o.policy_path.empty()) o.policy_path = policy::policy_path();
    if (o.socket_path.empty()) {
      auto p = policy::load_policy_file(o.policy_path);
      if (!p) usage_error(p.error().message);
      o.socket_path = p->agent.socket;
    }
    agent_daemon::run(o);
  });
}

}  // namespace ssx::cli

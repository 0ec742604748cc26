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
  set_example(cmd,
              "  ssx agent --policy /etc/ssx/policy.toml\n"
              "  ssx agent --socket /run/ssx/agent.sock");
  cmd->callback([opts] {
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

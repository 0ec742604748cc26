// SPDX-License-Identifier: Apache-2.0
#include "config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "policy/prescan.hpp"
#include "policy/toml_names.hpp"

namespace ssx::cli::tunnel {
namespace {

constexpr const char *kTunnelKeys = "mode, listen, to, name, proxy_protocol, policy";

Result<std::string> read_config(const std::string &path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    return fail(err, path + ": cannot open tunnel configuration: " + std::strerror(err));
  }
  struct stat st {};
  std::string text;
  int err = 0;
  std::string why;
  if (::fstat(fd, &st) != 0) {
    err = errno;
    why = std::string("cannot stat: ") + std::strerror(err);
  } else if (S_ISDIR(st.st_mode)) {
    err = EISDIR;
    why = "is a directory";
  } else if (!S_ISREG(st.st_mode)) {
    err = EINVAL;
    why = "is not a regular file";
  } else if ((st.st_mode & S_IWOTH) != 0) {
    err = EACCES;
    why = "is writable by others; run: chmod o-w " + path;
  } else if (static_cast<size_t>(st.st_size) > policy::kMaxPolicyBytes) {
    err = EFBIG;
    why = "is larger than 1 MiB (" + std::to_string(st.st_size) + " bytes)";
  } else {
    text.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        err = errno;
        why = std::string("cannot read: ") + std::strerror(err);
        break;
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    text.resize(done);
  }
  ::close(fd);
  if (err != 0) return fail(err, path + ": tunnel configuration " + why);
  return text;
}

std::string at(const std::string &path, const toml::source_position &p) {
  return path + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

Failure error(const std::string &path, const toml::node &node, const std::string &message) {
  return Failure{EINVAL, at(path, node.source().begin) + ": " + message};
}

Result<std::string> string_of(const std::string &path, const std::string &what,
                              const toml::node &node) {
  const auto *s = node.as_string();
  if (s == nullptr)
    return error(path, node,
                 what + " must be a string, not " + std::string(policy::toml_type_name(node)));
  if (s->get().empty()) return error(path, node, what + " must not be empty");
  return s->get();
}

// in_file_order: toml::table keeps its keys sorted; errors and tunnels go in file order.
std::vector<std::pair<const toml::key *, const toml::node *>> in_file_order(
    const toml::table &table) {
  std::vector<std::pair<const toml::key *, const toml::node *>> out;
  for (const auto &[key, node] : table) out.emplace_back(&key, &node);
  std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
    const auto &pa = a.first->source().begin;
    const auto &pb = b.first->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

Result<TunnelEntry> load_tunnel(const std::string &path, const toml::key &key,
                                const toml::node &node) {
  TunnelEntry entry;
  entry.name = std::string(key.str());
  entry.where[""] = at(path, key.source().begin);
  // The name goes into log lines as it is: letters, digits, '.', '_', '-' only.
  bool plain = !entry.name.empty() && entry.name.size() <= 64;
  for (char c : entry.name) {
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-');
  }
  if (!plain) {
    return Failure{
        EINVAL, entry.where[""] + ": a tunnel's name is 1 to 64 letters, digits, '.', '_' or '-'"};
  }
  const std::string label = "tunnel \"" + entry.name + "\"";
  const auto *table = node.as_table();
  if (table == nullptr) {
    return error(path, node,
                 "[tunnel." + entry.name + "] must be a table, not " +
                     std::string(policy::toml_type_name(node)));
  }
  for (const auto &[k, value] : in_file_order(*table)) {
    const std::string name(k->str());
    entry.where[name] = at(path, value->source().begin);
    if (name == "mode" || name == "listen" || name == "to" || name == "policy" ||
        name == "proxy_protocol") {
      std::string what = label;
      what += ": ";
      what += name;
      auto text = string_of(path, what, *value);
      if (!text) return text.error();
      if (name == "mode") entry.mode = *text;
      if (name == "listen") entry.listen = *text;
      if (name == "to") entry.to = *text;
      if (name == "policy") entry.policy = *text;
      if (name == "proxy_protocol") entry.proxy_protocol = *text;
    } else if (name == "name") {
      if (value->is_string()) {
        auto text = string_of(path, label + ": name", *value);
        if (!text) return text.error();
        entry.names.push_back(*text);
      } else if (const auto *array = value->as_array()) {
        if (array->size() > 64)
          return error(path, *value, label + ": name has more than 64 entries");
        for (const auto &item : *array) {
          auto text = string_of(path, label + ": each element of name", item);
          if (!text) return text.error();
          entry.names.push_back(*text);
        }
      } else {
        return error(path, *value,
                     label + ": name must be a string or an array of strings, not " +
                         std::string(policy::toml_type_name(*value)));
      }
    } else {
      std::string message = at(path, k->source().begin);
      message += ": " + label;
      message += ": unknown key \"" + name;
      message += "\" (a tunnel takes ";
      message += kTunnelKeys;
      message += ")";
      return Failure{EINVAL, message};
    }
  }
  for (const char *required : {"mode", "listen", "to"}) {
    if (entry.where.count(required) == 0) {
      return Failure{EINVAL, entry.where[""] + ": " + label + " has no " + required};
    }
  }
  return entry;
}

}  // namespace

Result<TunnelConfig> load_tunnel_config(const std::string &path) {
  auto text = read_config(path);
  if (!text) return text.error();
  // The policy loader's bounds, before toml++ sees a byte: it recurses once per level.
  if (auto r = policy::prescan_policy(*text, path); !r) return r.error();
  toml::table root;
  try {
    root = toml::parse(*text, path);
  } catch (const toml::parse_error &e) {
    return Failure{EINVAL,
                   at(path, e.source().begin) + ": invalid TOML: " + std::string(e.description())};
  }
  TunnelConfig config;
  config.path = path;
  for (const auto &[key, node] : in_file_order(root)) {
    const std::string name(key->str());
    if (name == "policy") {
      auto p = string_of(path, "policy", *node);
      if (!p) return p.error();
      config.policy = *p;
      config.policy_where = at(path, node->source().begin);
    } else if (name == "tunnel") {
      const auto *tunnels = node->as_table();
      if (tunnels == nullptr) {
        return error(path, *node,
                     "tunnel must be tables [tunnel.NAME], not " +
                         std::string(policy::toml_type_name(*node)));
      }
      for (const auto &[tunnel_key, tunnel_node] : in_file_order(*tunnels)) {
        if (config.tunnels.size() >= kMaxTunnels) {
          return Failure{EINVAL, at(path, tunnel_key->source().begin) + ": more than " +
                                     std::to_string(kMaxTunnels) + " tunnels"};
        }
        auto entry = load_tunnel(path, *tunnel_key, *tunnel_node);
        if (!entry) return entry.error();
        config.tunnels.push_back(std::move(*entry));
      }
    } else {
      return Failure{EINVAL, at(path, key->source().begin) + ": unknown key \"" + name +
                                 "\" (the top level takes policy and [tunnel.NAME] tables)"};
    }
  }
  if (config.tunnels.empty()) {
    return fail(EINVAL, path + ": no tunnel: add a [tunnel.NAME] table with mode, listen and to");
  }
  return config;
}

}  // namespace ssx::cli::tunnel

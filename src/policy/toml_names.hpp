// SPDX-License-Identifier: Apache-2.0
// policy/toml_names.hpp — how ssx names a TOML value's type in messages ("must be a string, not
// an integer"), shared by the policy loader and the files read like it (ssx tunnel --config).
// Only for code that already parses TOML: it includes toml++.

#ifndef SSX_POLICY_TOML_NAMES_HPP
#define SSX_POLICY_TOML_NAMES_HPP

#include <toml++/toml.h>

#include <string_view>

namespace ssx::policy {

// toml_type_name returns "a string", "an integer", "a table", "a date-time", …
inline std::string_view toml_type_name(const toml::node &node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

}  // namespace ssx::policy

#endif  // SSX_POLICY_TOML_NAMES_HPP

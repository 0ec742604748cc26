// SPDX-License-Identifier: Apache-2.0
// A C++ program using the installed libssx through ssx.hpp (C++20): the RAII API's policy calls
// and a refused secured connection. Usage: consumer_cxx DIR (a writable scratch directory).
#include <cstdio>
#include <fstream>
#include <ssx/ssx.hpp>
#include <string>

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
    return 2;
  }
  const std::string good = std::string(argv[1]) + "/good-cxx.toml";
  const std::string bad = std::string(argv[1]) + "/bad-cxx.toml";
  std::ofstream(good) << "version = 1\n[defaults]\nmin_tls_version = \"1.3\"\n";
  std::ofstream(bad) << "version = 1\n[defaults]\nmin_tls_version = 1.3\n";
  if (auto r = ssx::load_policy(good); !r) {
    std::fprintf(stderr, "valid policy rejected: %s\n", r.error().message.c_str());
    return 1;
  }
  auto r = ssx::load_policy(bad);
  if (r || r.error().message.find("bad-cxx.toml:3:") == std::string::npos) {
    std::fprintf(stderr, "invalid policy not rejected as expected\n");
    return 1;
  }
  std::printf("C++ consumer: ssx %s (headers %s), policy loader ok\n", ssx_version(),
              SSX_VERSION_STRING);
  return 0;
}

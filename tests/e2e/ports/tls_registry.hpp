#pragma once
// A TLS registry on the host's loopback for the e2e tests: Debian's docker-registry
// (the reference registry, distribution 2.x) with a CA and a server certificate the test
// makes with openssl. The VM reaches it as 10.0.2.2:PORT (QEMU's user networking maps
// 10.0.2.2 to the host's 127.0.0.1). Nothing leaves the machine.
#include <cstdint>
#include <filesystem>
#include <string>

#include "cordon/subprocess.hpp"

namespace cordon::e2e {

// A CA (key + self-signed certificate) in `dir`. Throws cordon::Error when openssl fails.
class TestCa {
  public:
    TestCa(const std::filesystem::path& dir, const std::string& name);
    const std::filesystem::path& cert() const { return cert_; }
    // A server certificate for 10.0.2.2, 127.0.0.1 and host.docker.internal signed by this
    // CA: writes <stem>.crt and <stem>.key beside the CA.
    void issue_server_cert(const std::string& stem) const;

  private:
    std::filesystem::path dir_, key_, cert_;
};

// The registry process, stopped (and its folder left to the caller) when destroyed.
class TlsRegistry {
  public:
    // Serves on 127.0.0.1:`port` with `dir`/<stem>.crt/.key (plain HTTP when !tls); waits
    // until it answers.
    TlsRegistry(const std::filesystem::path& dir, const std::string& stem, std::uint16_t port,
                bool tls = true);
    ~TlsRegistry();
    TlsRegistry(const TlsRegistry&) = delete;
    TlsRegistry& operator=(const TlsRegistry&) = delete;
    // "10.0.2.2:PORT": the registry as the VM names it.
    std::string vm_address() const { return "10.0.2.2:" + std::to_string(port_); }
    std::string log() const;

  private:
    std::filesystem::path log_;
    std::uint16_t port_;
    Child child_;
};

// Whether the registry binary is installed (scripts/bootstrap installs docker-registry).
bool have_registry_binary();

}  // namespace cordon::e2e

#pragma once
// A small interface over the parts of libvirt Cordon uses. The real one
// (make_libvirt()) wraps the C API with RAII handles; unit tests use a fake to
// drive the error paths. Every method throws HostError.
#include <memory>
#include <string>

namespace cordon::host {

enum class DomainState { running, paused, shutting_down, shutoff, crashed, suspended, other };
std::string to_string(DomainState s);

struct DomainStatus {
    DomainState state = DomainState::other;
    std::string reason;  // libvirt's reason in words ("destroyed", "shutdown", "booted", ...)
    bool active() const {
        return state == DomainState::running || state == DomainState::paused ||
               state == DomainState::shutting_down || state == DomainState::suspended;
    }
};

class Domain {
  public:
    virtual ~Domain() = default;
    virtual std::string name() const = 0;
    virtual std::string uuid() = 0;
    virtual DomainStatus status() = 0;
    virtual std::string xml() = 0;
    virtual void create() = 0;    // virDomainCreate
    virtual void shutdown() = 0;  // virDomainShutdown (ACPI)
    virtual void destroy() = 0;   // virDomainDestroy
    virtual void undefine() = 0;  // virDomainUndefine
};

class Connection {
  public:
    virtual ~Connection() = default;
    virtual std::string uri() const = 0;
    virtual bool is_local() const = 0;  // the daemon runs on this host
    // nullptr when no domain has that name.
    virtual std::unique_ptr<Domain> lookup(const std::string& name) = 0;
    // Defines (or redefines) a persistent domain.
    virtual std::unique_ptr<Domain> define(const std::string& xml) = 0;
    // "9.0.0" of the daemon and "7.2.0" of the hypervisor; empty when unknown.
    virtual std::string daemon_version() = 0;
    virtual std::string hypervisor_version() = 0;
    // Whether libvirt offers the kvm domain type for x86_64 on this connection.
    virtual bool offers_kvm() = 0;
};

class Hypervisor {
  public:
    virtual ~Hypervisor() = default;
    // Throws HostError(libvirt_unreachable) with a hint how to start libvirtd.
    virtual std::unique_ptr<Connection> connect(const std::string& uri) = 0;
};

std::unique_ptr<Hypervisor> make_libvirt();

// qemu:///system for root, qemu:///session otherwise.
std::string default_uri();

// The libvirt client library version ("9.0.0").
std::string libvirt_library_version();

}  // namespace cordon::host

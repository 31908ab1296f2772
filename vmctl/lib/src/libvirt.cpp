// The libvirt implementation of virt.hpp: RAII over virConnectPtr/virDomainPtr.
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <signal.h>
#include <unistd.h>

#include <memory>

#include "cordon/host/host_error.hpp"
#include "cordon/host/virt.hpp"

namespace cordon::host {

std::string to_string(DomainState s) {
    switch (s) {
        case DomainState::running:
            return "running";
        case DomainState::paused:
            return "paused";
        case DomainState::shutting_down:
            return "shutting-down";
        case DomainState::shutoff:
            return "stopped";
        case DomainState::crashed:
            return "crashed";
        case DomainState::suspended:
            return "suspended";
        case DomainState::other:
            return "unknown";
    }
    return "unknown";
}

std::string default_uri() {
    return ::geteuid() == 0 ? "qemu:///system" : "qemu:///session";
}

namespace {

struct ConnectClose {
    void operator()(virConnectPtr c) const noexcept { virConnectClose(c); }
};
struct DomainFree {
    void operator()(virDomainPtr d) const noexcept { virDomainFree(d); }
};
struct CharFree {
    void operator()(char* p) const noexcept { free(p); }  // NOLINT: libvirt allocates with malloc
};
using ConnectPtr = std::unique_ptr<virConnect, ConnectClose>;
using DomainPtr = std::unique_ptr<virDomain, DomainFree>;
using CString = std::unique_ptr<char, CharFree>;

void ignore_errors(void*, virErrorPtr) {}

std::string last_error() {
    virErrorPtr e = virGetLastError();
    return e && e->message ? std::string(e->message) : std::string("unknown libvirt error");
}
int last_code() {
    virErrorPtr e = virGetLastError();
    return e ? e->code : 0;
}

std::string version_text(unsigned long v) {
    return std::to_string(v / 1000000) + "." + std::to_string((v / 1000) % 1000) + "." +
           std::to_string(v % 1000);
}

std::string shutoff_reason(int r) {
    switch (r) {
        case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
            return "shut down by the guest";
        case VIR_DOMAIN_SHUTOFF_DESTROYED:
            return "destroyed (killed from outside the guest)";
        case VIR_DOMAIN_SHUTOFF_CRASHED:
            return "crashed";
        case VIR_DOMAIN_SHUTOFF_FAILED:
            return "failed to start";
        case VIR_DOMAIN_SHUTOFF_SAVED:
            return "saved";
        case VIR_DOMAIN_SHUTOFF_MIGRATED:
            return "migrated";
        case VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT:
            return "reverted from a snapshot";
        case VIR_DOMAIN_SHUTOFF_DAEMON:
            return "the daemon stopped it";
        default:
            return "never started";
    }
}

std::string running_reason(int r) {
    switch (r) {
        case VIR_DOMAIN_RUNNING_BOOTED:
            return "booted";
        case VIR_DOMAIN_RUNNING_UNPAUSED:
            return "unpaused";
        case VIR_DOMAIN_RUNNING_RESTORED:
            return "restored";
        case VIR_DOMAIN_RUNNING_WAKEUP:
            return "woken up";
        default:
            return "running";
    }
}

class LibvirtDomain final : public Domain {
  public:
    LibvirtDomain(DomainPtr d, std::string uri) : d_(std::move(d)), uri_(std::move(uri)) {}
    std::string name() const override {
        const char* n = virDomainGetName(d_.get());
        return n ? n : "";
    }
    std::string uuid() override {
        char buf[VIR_UUID_STRING_BUFLEN] = {};
        if (virDomainGetUUIDString(d_.get(), buf) < 0)
            fail("cannot read the UUID of the VM");
        return buf;
    }
    DomainStatus status() override {
        int state = 0, reason = 0;
        if (virDomainGetState(d_.get(), &state, &reason, 0) < 0)
            fail("cannot read the state of the VM");
        DomainStatus s;
        switch (state) {
            case VIR_DOMAIN_RUNNING:
            case VIR_DOMAIN_BLOCKED:
                s.state = DomainState::running;
                s.reason = running_reason(reason);
                break;
            case VIR_DOMAIN_PAUSED:
                s.state = DomainState::paused;
                s.reason = "paused";
                break;
            case VIR_DOMAIN_SHUTDOWN:
                s.state = DomainState::shutting_down;
                s.reason = "shutting down";
                break;
            case VIR_DOMAIN_SHUTOFF:
                s.state = DomainState::shutoff;
                s.reason = shutoff_reason(reason);
                break;
            case VIR_DOMAIN_CRASHED:
                s.state = DomainState::crashed;
                s.reason = "crashed";
                break;
            case VIR_DOMAIN_PMSUSPENDED:
                s.state = DomainState::suspended;
                s.reason = "suspended";
                break;
            default:
                s.state = DomainState::other;
                s.reason = "unknown";
                break;
        }
        return s;
    }
    std::string xml() override {
        CString x(virDomainGetXMLDesc(d_.get(), 0));
        if (!x)
            fail("cannot read the XML of the VM");
        return x.get();
    }
    void create() override {
        if (virDomainCreate(d_.get()) < 0)
            fail("libvirt cannot start the VM");
    }
    void shutdown() override {
        if (virDomainShutdown(d_.get()) < 0)
            fail("libvirt cannot send the ACPI shutdown to the VM");
    }
    void destroy() override {
        if (virDomainDestroy(d_.get()) < 0) {
            if (last_code() == VIR_ERR_OPERATION_INVALID)
                return;  // already off
            fail("libvirt cannot stop the VM");
        }
    }
    void undefine() override {
        if (virDomainUndefineFlags(
                d_.get(), VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
            fail("libvirt cannot undefine the VM");
        }
    }

  private:
    [[noreturn]] void fail(const std::string& what) {
        std::string detail = last_error();  // before name(): every libvirt call resets the error
        throw HostError(ErrorKind::libvirt, what + ": " + detail, name() + " on " + uri_);
    }
    DomainPtr d_;
    std::string uri_;
};

class LibvirtConnection final : public Connection {
  public:
    LibvirtConnection(ConnectPtr c, std::string uri) : c_(std::move(c)), uri_(std::move(uri)) {}
    std::string uri() const override { return uri_; }
    bool is_local() const override {
        CString host(virConnectGetHostname(c_.get()));
        char mine[256] = {};
        ::gethostname(mine, sizeof mine - 1);
        // A URI without a host part is local; qemu+ssh://this-host/ is local too.
        return uri_.find("://") == std::string::npos || uri_.find(":///") != std::string::npos ||
               (host && std::string(host.get()) == mine);
    }
    std::unique_ptr<Domain> lookup(const std::string& name) override {
        DomainPtr d(virDomainLookupByName(c_.get(), name.c_str()));
        if (!d) {
            if (last_code() == VIR_ERR_NO_DOMAIN)
                return nullptr;
            throw HostError(ErrorKind::libvirt, "libvirt cannot look up the VM: " + last_error(),
                            name + " on " + uri_);
        }
        return std::make_unique<LibvirtDomain>(std::move(d), uri_);
    }
    std::unique_ptr<Domain> define(const std::string& xml) override {
        DomainPtr d(virDomainDefineXML(c_.get(), xml.c_str()));
        if (!d)
            throw HostError(ErrorKind::libvirt,
                            "libvirt refused the VM definition: " + last_error(), uri_);
        return std::make_unique<LibvirtDomain>(std::move(d), uri_);
    }
    std::string daemon_version() override {
        unsigned long v = 0;
        return virConnectGetLibVersion(c_.get(), &v) == 0 ? version_text(v) : std::string();
    }
    std::string hypervisor_version() override {
        unsigned long v = 0;
        return virConnectGetVersion(c_.get(), &v) == 0 ? version_text(v) : std::string();
    }
    bool offers_kvm() override {
        CString caps(
            virConnectGetDomainCapabilities(c_.get(), nullptr, "x86_64", nullptr, "kvm", 0));
        return caps != nullptr;
    }

  private:
    ConnectPtr c_;
    std::string uri_;
};

class LibvirtHypervisor final : public Hypervisor {
  public:
    LibvirtHypervisor() {
        virSetErrorFunc(nullptr, ignore_errors);
        // libvirt's client writes to the daemon's socket with write(): once libvirtd is gone
        // (restarted), the next write (a keepalive, a call) raises SIGPIPE, which kills a
        // process that kept the default (the desktop app did). Ignored, the write fails with
        // EPIPE and libvirt reports a closed connection. A handler set by the program stays.
        struct sigaction old {};
        if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL)
            ::signal(SIGPIPE, SIG_IGN);
    }
    std::unique_ptr<Connection> connect(const std::string& uri_in) override {
        const std::string uri = uri_in.empty() ? default_uri() : uri_in;
        ConnectPtr c(virConnectOpen(uri.c_str()));
        if (!c) {
            const std::string detail = last_error();
            std::string hint;
            const bool no_daemon = detail.find("Failed to connect socket") != std::string::npos ||
                                   detail.find("Connection refused") != std::string::npos;
            if (no_daemon) {
                hint =
                    "libvirtd is not running (or not where the URI points): start it with "
                    "`virtlogd -d && "
                    "libvirtd -d` (as root), or `systemctl start libvirtd` on a machine with "
                    "systemd";
            } else if (uri.rfind("qemu:///system", 0) == 0) {
                hint =
                    "libvirtd is not running: start it with `virtlogd -d && libvirtd -d` (as "
                    "root), or "
                    "`systemctl start libvirtd` on a machine with systemd";
            } else if (uri.rfind("qemu:///session", 0) == 0) {
                hint =
                    "libvirt cannot start the session daemon: check that libvirt-daemon and "
                    "libvirt-daemon-driver-qemu are installed, or use --connect qemu:///system as "
                    "root";
            } else {
                hint =
                    "check that libvirtd runs where the URI points (start it with `libvirtd -d`, "
                    "or "
                    "`systemctl start libvirtd`) and that the URI is right (--connect or the "
                    "connect_uri setting)";
            }
            throw HostError(ErrorKind::libvirt_unreachable, "cannot connect to libvirt: " + detail,
                            uri, hint);
        }
        return std::make_unique<LibvirtConnection>(std::move(c), uri);
    }
};

}  // namespace

std::unique_ptr<Hypervisor> make_libvirt() {
    return std::make_unique<LibvirtHypervisor>();
}

std::string libvirt_library_version() {
    unsigned long v = 0;
    return virGetVersion(&v, nullptr, nullptr) == 0 ? version_text(v) : std::string();
}

}  // namespace cordon::host

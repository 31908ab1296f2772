#include "context.hpp"

#include "cordon/host/host_error.hpp"
#include "cordon/host/paths.hpp"

namespace vmctl {

using namespace cordon::host;

LayeredSettings& Context::settings() {
    if (!settings_)
        settings_ = LayeredSettings::load(SettingsFiles::standard());
    return *settings_;
}

Settings Context::effective() {
    Settings s = settings().effective();
    if (!opts_.connect.empty())
        s.connect_uri = opts_.connect;
    if (!opts_.vm.empty()) {
        if (settings().get("vm_name").locked && opts_.vm != s.vm_name) {
            throw HostError(ErrorKind::locked, settings().locked_message("vm_name"));
        }
        validate_vm_name(opts_.vm);
        s.vm_name = opts_.vm;
    }
    if (!opts_.connect.empty() && settings().get("connect_uri").locked &&
        opts_.connect != settings().effective().connect_uri) {
        throw HostError(ErrorKind::locked, settings().locked_message("connect_uri"));
    }
    return s;
}

Hypervisor& Context::hypervisor() {
    if (!hv_)
        hv_ = make_libvirt();
    return *hv_;
}

Vm Context::vm(const Settings& s) {
    return Vm(hypervisor(), s);
}

}  // namespace vmctl

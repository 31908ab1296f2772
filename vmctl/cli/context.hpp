#pragma once
// What every command gets: the global options, the output, and lazily the
// settings, libvirt and the Vm.
#include <memory>
#include <optional>
#include <string>

#include "cordon/host/settings.hpp"
#include "cordon/host/virt.hpp"
#include "cordon/host/vm.hpp"
#include "output.hpp"

namespace vmctl {

struct GlobalOptions {
    bool json = false;
    bool verbose = false;
    std::string connect;  // --connect URI
    std::string vm;       // --vm NAME
};

class Context {
  public:
    explicit Context(Output& out) : out_(out) {}
    GlobalOptions& options() { return opts_; }
    Output& out() { return out_; }

    cordon::host::LayeredSettings& settings();
    // The layered settings with the command line's --connect and --vm applied.
    cordon::host::Settings effective();
    cordon::host::Hypervisor& hypervisor();
    // A Vm for the effective settings, with extra tweaks (e.g. start --image-dir).
    cordon::host::Vm vm(const cordon::host::Settings& s);
    cordon::host::Vm vm() { return vm(effective()); }

  private:
    Output& out_;
    GlobalOptions opts_;
    std::optional<cordon::host::LayeredSettings> settings_;
    std::unique_ptr<cordon::host::Hypervisor> hv_;
};

}  // namespace vmctl

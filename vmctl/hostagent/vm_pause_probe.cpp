#include "vm_pause_probe.hpp"

#include <exception>

#include "cordon/host/virt.hpp"
#include "cordon/log.hpp"

namespace cordon::hostagent {

std::function<bool()> libvirt_pause_probe(std::string uri, std::string vm_name) {
    return [uri = std::move(uri), vm_name = std::move(vm_name)] {
        try {
            auto conn = host::make_libvirt()->connect(uri);
            auto dom = conn->lookup(vm_name);
            if (!dom)
                return false;
            const host::DomainState st = dom->status().state;
            return st == host::DomainState::paused || st == host::DomainState::suspended;
        } catch (const std::exception& e) {
            log::warn("hostagent", "cannot ask libvirt ({}) whether {} is paused: {}", uri, vm_name,
                      e.what());
            return false;
        }
    };
}

}  // namespace cordon::hostagent

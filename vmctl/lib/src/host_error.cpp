#include "cordon/host/host_error.hpp"

namespace cordon::host {

std::string_view to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::generic:
            return "generic";
        case ErrorKind::usage:
            return "usage";
        case ErrorKind::config:
            return "config";
        case ErrorKind::locked:
            return "locked";
        case ErrorKind::image:
            return "image";
        case ErrorKind::libvirt_unreachable:
            return "libvirt_unreachable";
        case ErrorKind::libvirt:
            return "libvirt";
        case ErrorKind::vm_not_found:
            return "vm_not_found";
        case ErrorKind::vm_not_running:
            return "vm_not_running";
        case ErrorKind::agent_unreachable:
            return "agent_unreachable";
        case ErrorKind::timeout:
            return "timeout";
        case ErrorKind::confirmation_required:
            return "confirmation_required";
        case ErrorKind::rpc:
            return "rpc";
        case ErrorKind::busy:
            return "busy";
        case ErrorKind::cancelled:
            return "cancelled";
    }
    return "generic";
}

ErrorKind kind_for_rpc_code(std::string_view code) {
    if (code == "confirmation_required")
        return ErrorKind::confirmation_required;
    if (code == "locked")
        return ErrorKind::locked;
    if (code == "busy")
        return ErrorKind::busy;
    return ErrorKind::rpc;
}

}  // namespace cordon::host

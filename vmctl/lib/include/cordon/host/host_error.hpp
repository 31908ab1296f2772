#pragma once
// Errors of the host library carry a kind, so every front end (vmctl's exit
// codes, the GUI's dialogs) can react to the category without parsing text.
#include <string>
#include <string_view>

#include "cordon/error.hpp"

namespace cordon::host {

enum class ErrorKind {
    generic,                // anything else
    usage,                  // a bad argument or value given by the caller
    config,                 // an invalid settings file or a bad setting value
    locked,                 // the administrator locked the setting
    image,                  // the VM image folder or its manifest.json is missing or invalid
    libvirt_unreachable,    // cannot connect to libvirtd
    libvirt,                // libvirt refused an operation
    vm_not_found,           // no VM of that name is defined
    vm_not_running,         // the operation needs a running VM
    agent_unreachable,      // the host agent or the guest agent does not answer
    timeout,                // the VM did not become ready in time
    confirmation_required,  // a destructive step needs --yes
    rpc,                    // the guest agent answered with an error
    busy,                   // the guest is in the middle of another operation (retry later)
    cancelled,              // the caller cancelled the operation
};

std::string_view to_string(ErrorKind kind);

// The kind an RPC error code from the guest agent maps to: "confirmation_required",
// "locked", "busy" have their own kinds; "unknown_method" means an older guest agent
// (rpc); every other code is rpc.
ErrorKind kind_for_rpc_code(std::string_view code);

class HostError : public cordon::Error {
  public:
    HostError(ErrorKind kind, std::string what, std::string subject = {}, std::string hint = {},
              std::string rpc_code = {})
        : cordon::Error(std::move(what), std::move(subject), std::move(hint)),
          kind_(kind),
          rpc_code_(std::move(rpc_code)) {}
    ErrorKind kind() const noexcept { return kind_; }
    // The guest agent's error code ("locked", "busy", "confirmation_required",
    // "unavailable", "unknown_method", ...) when the guest refused; empty otherwise.
    const std::string& rpc_code() const noexcept { return rpc_code_; }

  private:
    ErrorKind kind_;
    std::string rpc_code_;
};

}  // namespace cordon::host

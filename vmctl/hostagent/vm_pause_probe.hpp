#pragma once
// Whether the VM is paused, asked of libvirt: the host agent's channel keeps waiting for
// a suspended VM (a simulated host sleep) instead of giving up on its keepalive.
#include <functional>
#include <string>

namespace cordon::hostagent {

// A probe that opens a libvirt connection to `uri` on each call (it is asked at most once
// per keepalive timeout) and says whether domain `vm_name` is paused or PM-suspended.
// Any failure (libvirtd down, no such domain) counts as "not paused": the keepalive then
// ends the channel as it would without the probe.
std::function<bool()> libvirt_pause_probe(std::string uri, std::string vm_name);

}  // namespace cordon::hostagent

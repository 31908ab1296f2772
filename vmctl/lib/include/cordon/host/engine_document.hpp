#pragma once
// The engine settings document vmctl hands to the guest at every start (fw_cfg file
// opt/org.cordon/engine, cordon/engine_settings.hpp): the registry settings and the CA
// certificates (the host's trust store and extra_ca_certs).
#include <string>

#include "cordon/host/ca_certs.hpp"
#include "cordon/host/settings.hpp"

namespace cordon::host {

// Reads every CA file and checks every value; throws HostError(config) naming the file or
// the setting. Nothing is written here.
std::string engine_document_for(const Settings& settings,
                                const std::string& host_bundle = kHostCaBundle);

}  // namespace cordon::host

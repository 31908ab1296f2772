#include "cordon/host/engine_document.hpp"

#include "cordon/engine_settings.hpp"
#include "cordon/host/host_error.hpp"

namespace cordon::host {

std::string engine_document_for(const Settings& s, const std::string& host_bundle) {
    EngineSettings e;
    e.registry_mirrors = s.registry_mirrors;
    e.insecure_registries = s.insecure_registries;
    e.dns = s.dns;
    e.ca_certificates = engine_ca_certificates(s.extra_ca_certs, host_bundle);
    try {
        return engine_document(e);
    } catch (const HostError&) {
        throw;
    } catch (const cordon::Error& err) {
        throw HostError(ErrorKind::config, err.failure(), err.subject(), err.hint());
    }
}

}  // namespace cordon::host

#pragma once
// The CA certificates the VM's engine trusts beyond the image's public bundle: the host's
// own trust store and the files of the extra_ca_certs setting (a corporate proxy's CA, a
// private registry's). Read at `vmctl settings set` (to refuse a bad file at once) and at
// every `vmctl start` (the files may have changed since).
#include <string>
#include <vector>

namespace cordon::host {

// The host's system bundle (Debian's update-ca-certificates output).
inline constexpr const char* kHostCaBundle = "/etc/ssl/certs/ca-certificates.crt";

// Reads a PEM file of one or more CA certificates and returns its text. Each block must
// parse as an X.509 certificate (OpenSSL). Throws HostError(config) naming the file, what
// is wrong with it and the setting that named it (`setting`; empty for the host's bundle).
std::string read_ca_file(const std::string& path, const std::string& setting);

// The host bundle (when the file exists; it is checked like the others) followed by the
// extra files, each ending with a newline. Throws as read_ca_file.
std::string engine_ca_certificates(const std::vector<std::string>& extra_files,
                                   const std::string& host_bundle = kHostCaBundle);

}  // namespace cordon::host

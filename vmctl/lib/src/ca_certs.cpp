#include "cordon/host/ca_certs.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "cordon/atomic_file.hpp"
#include "cordon/engine_settings.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/log.hpp"

namespace cordon::host {

namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};

// The number of certificates OpenSSL reads from `pem`; throws when one does not parse.
std::size_t parse_certificates(const std::string& pem, const std::string& path,
                               const std::string& hint) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    if (!bio)
        throw HostError(ErrorKind::generic, "cannot allocate an OpenSSL buffer", path);
    std::size_t n = 0;
    for (;;) {
        ERR_clear_error();
        std::unique_ptr<X509, X509Free> cert(
            PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        if (!cert) {
            const unsigned long err = ERR_peek_last_error();
            // The end of the data is "no start line"; anything else is a broken certificate.
            if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE)
                break;
            char text[256] = {};
            ERR_error_string_n(err, text, sizeof text);
            throw HostError(ErrorKind::config,
                            "certificate " + std::to_string(n + 1) +
                                " of the file does not parse as X.509 (" + text + ")",
                            path, hint);
        }
        ++n;
    }
    ERR_clear_error();
    return n;
}

}  // namespace

std::string read_ca_file(const std::string& path, const std::string& setting) {
    // An empty setting: the host's own bundle, which update-ca-certificates writes.
    const std::string hint = setting.empty()
                                 ? std::string("run update-ca-certificates to write it again")
                                 : "fix or replace the file, or remove it from the setting " +
                                       setting + " (vmctl settings set " + setting + " ...)";
    if (::access(path.c_str(), R_OK) != 0)
        throw HostError(ErrorKind::config,
                        "cannot read a CA certificate file: " + errno_string(errno), path, hint);
    std::string text;
    try {
        text = read_file(path);
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::config, e.failure(), path, hint);
    }
    try {
        check_pem_certificate_blocks(text, path);
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::config,
                        e.failure() + (setting.empty() ? "" : " (named by " + setting + ")"), path,
                        e.hint() + "; or " + hint);
    }
    (void)parse_certificates(text, path, hint);
    if (!text.empty() && text.back() != '\n')
        text += '\n';
    return text;
}

std::string engine_ca_certificates(const std::vector<std::string>& extra_files,
                                   const std::string& host_bundle) {
    std::string out;
    if (::access(host_bundle.c_str(), F_OK) == 0) {
        try {  // not a setting: a broken system file must not keep the VM from starting
            out += read_ca_file(host_bundle, "");
        } catch (const HostError& e) {
            log::warn("settings", "not passing the host's CA certificates to the VM: {}", e.what());
        }
    }
    for (const auto& f : extra_files) out += read_ca_file(f, "extra_ca_certs");
    return out;
}

}  // namespace cordon::host

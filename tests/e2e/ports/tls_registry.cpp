#include "tls_registry.hpp"

#include <fstream>
#include <thread>

#include "cordon/error.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace cordon::e2e {

namespace {

void openssl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{"openssl"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv, 60s);
    if (!r.ok())
        throw Error("openssl failed: " + r.err, args.front(), "is openssl installed?");
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TestCa::TestCa(const fs::path& dir, const std::string& name)
    : dir_(dir), key_(dir / (name + ".key")), cert_(dir / (name + ".crt")) {
    fs::create_directories(dir_);
    openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-days", "2", "-subj", "/CN=Cordon e2e " + name, "-keyout", key_.string(), "-out",
             cert_.string(), "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
             "keyUsage=critical,keyCertSign,cRLSign"});
}

void TestCa::issue_server_cert(const std::string& stem) const {
    const fs::path key = dir_ / (stem + ".key"), csr = dir_ / (stem + ".csr"),
                   crt = dir_ / (stem + ".crt"), ext = dir_ / (stem + ".ext");
    std::ofstream(ext) << "subjectAltName=IP:10.0.2.2,IP:127.0.0.1,DNS:host.docker.internal\n"
                          "extendedKeyUsage=serverAuth\n";
    openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
             "/CN=10.0.2.2", "-keyout", key.string(), "-out", csr.string()});
    openssl({"x509", "-req", "-in", csr.string(), "-CA", cert_.string(), "-CAkey", key_.string(),
             "-CAcreateserial", "-days", "2", "-extfile", ext.string(), "-out", crt.string()});
}

TlsRegistry::TlsRegistry(const fs::path& dir, const std::string& stem, std::uint16_t port, bool tls)
    : log_(dir / (stem + "-registry.log")), port_(port) {
    const fs::path cfg = dir / (stem + "-registry.yml");
    std::ofstream(cfg) << "version: 0.1\n"
                          "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
                          "storage:\n  filesystem:\n    rootdirectory: "
                       << (dir / (stem + "-storage")).string()
                       << "\n  delete:\n    enabled: true\n"
                          "http:\n  addr: 127.0.0.1:"
                       << port << "\n";
    if (tls)
        std::ofstream(cfg, std::ios::app)
            << "  tls:\n    certificate: " << (dir / (stem + ".crt")).string()
            << "\n    key: " << (dir / (stem + ".key")).string() << "\n";
    SpawnOptions o;
    o.capture_output = false;  // to a file: a full pipe would stall the registry
    child_ = Child::spawn(
        {"sh", "-c", "exec docker-registry serve \"$0\" >\"$1\" 2>&1", cfg.string(), log_.string()},
        o);
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto r = run({"curl", "-sSk", "-o", "/dev/null",
                            (tls ? "https" : "http") + std::string("://127.0.0.1:") +
                                std::to_string(port) + "/v2/"},
                           10s);
        if (r.ok())
            return;
        if (!child_.running())
            throw Error("docker-registry exited: " + log(), cfg.string(),
                        "install docker-registry (scripts/bootstrap)");
        std::this_thread::sleep_for(200ms);
    }
    throw Error("docker-registry did not answer within 30 s: " + log(), cfg.string());
}

TlsRegistry::~TlsRegistry() {
    child_.terminate(3000ms);
}

std::string TlsRegistry::log() const {
    return slurp(log_);
}

bool have_registry_binary() {
    return !find_program("docker-registry").empty();
}

}  // namespace cordon::e2e

#include <fstream>

#include "backend.hpp"
#include "cordon/host/host_error.hpp"

namespace cordon::gui {

using host::ErrorKind;
using host::HostError;

HostBackend::HostBackend(std::unique_ptr<host::Hypervisor> hypervisor, host::Settings settings,
                         Options options)
    : hv_(std::move(hypervisor)), settings_(std::move(settings)), options_(std::move(options)) {}

host::Settings HostBackend::current() const {
    std::lock_guard lock(mu_);
    host::Settings s = settings_;
    if (!options_.uri_override.empty())
        s.connect_uri = options_.uri_override;
    return s;
}

void HostBackend::setSettings(const host::Settings& settings) {
    std::lock_guard lock(mu_);
    settings_ = settings;
}

// A Vm is cheap (a settings copy and paths); one per call keeps calls from
// different worker threads apart. libvirt connections are opened per call.
host::VmStatus HostBackend::status() {
    host::Vm vm(*hv_, current());
    return vm.status(std::chrono::seconds(3));
}

host::StartResult HostBackend::start(const host::Progress& progress) {
    host::Vm vm(*hv_, current());
    host::StartOptions opt;
    opt.progress = progress;
    opt.ready_timeout = options_.ready_timeout;
    return vm.start(opt);
}

host::StartResult HostBackend::startWith(const host::StartOptions& options) {
    host::Vm vm(*hv_, current());
    host::StartOptions opt = options;
    opt.ready_timeout = options_.ready_timeout;
    return vm.start(opt);
}

nlohmann::json HostBackend::setIsolation(bool enabled, bool confirmed,
                                         const host::StepProgress& on_step) {
    host::Vm vm(*hv_, current());
    return vm.set_isolation(enabled, confirmed, nullptr, on_step, std::chrono::minutes(10));
}

std::unique_ptr<host::AgentEventWatcher> HostBackend::watchAgentEvents(
    host::AgentEventWatcher::EventHandler on_event, host::AgentEventWatcher::LinkHandler on_link) {
    return std::make_unique<host::AgentEventWatcher>(paths().control_socket, std::move(on_event),
                                                     std::move(on_link));
}

host::StopResult HostBackend::stop(const host::Progress& progress) {
    host::Vm vm(*hv_, current());
    host::StopOptions opt;
    opt.progress = progress;
    return vm.stop(opt);
}

nlohmann::json HostBackend::callAgent(const std::string& method, const nlohmann::json& params,
                                      std::chrono::milliseconds timeout) {
    host::Vm vm(*hv_, current());
    return vm.call_agent(method, params, timeout);
}

std::vector<host::docker::Container> HostBackend::containers() {
    return dockerClient().list_containers(true);
}

std::string HostBackend::readLog(const std::string& which, std::size_t max_bytes) {
    const host::VmPaths p = paths();
    std::filesystem::path file;
    if (which == "console") {
        file = p.console_log;
    } else if (which == "hostagent") {
        file = p.hostagent_log;
    } else {
        throw HostError(ErrorKind::usage, "unknown local log '" + which + "'", {},
                        "use console or hostagent");
    }
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) {
        throw HostError(ErrorKind::generic, "cannot read the " + which + " log", file.string(),
                        "the file appears when the VM has been started at least once");
    }
    const std::streamoff size = in.tellg();
    const std::streamoff from = size > static_cast<std::streamoff>(max_bytes)
                                    ? size - static_cast<std::streamoff>(max_bytes)
                                    : 0;
    in.seekg(from);
    std::string text(static_cast<std::size_t>(size - from), '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    if (from > 0) {
        // Start at a whole line.
        auto nl = text.find('\n');
        if (nl != std::string::npos)
            text.erase(0, nl + 1);
    }
    return text;
}

host::VmPaths HostBackend::paths() const {
    return host::vm_paths(current().vm_name);
}

std::string HostBackend::uri() const {
    host::Settings s = current();
    return s.connect_uri.empty() ? host::default_uri() : s.connect_uri;
}

}  // namespace cordon::gui

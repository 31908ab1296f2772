#include <deque>
#include <fstream>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

CLI::App* LogsCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "logs",
        "Show logs: console (the VM's serial console) or hostagent (the host agent), both read on "
        "the host, or from the guest agent's supervisor: engine (= dockerd), dockerd, containerd, "
        "agent");
    app_->add_option("source", source_, "console, hostagent, engine, dockerd, containerd or agent")
        ->check(CLI::IsMember({"console", "hostagent", "engine", "dockerd", "containerd", "agent"}))
        ->required();
    app_->add_option("-n,--tail", tail_, "Show only the last N lines (0: all)")
        ->capture_default_str();
    return app_;
}

int LogsCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    std::vector<std::string> lines;
    if (source_ == "console" || source_ == "hostagent") {
        const bool console = source_ == "console";
        const auto& path = console ? vm.paths().console_log : vm.paths().hostagent_log;
        std::ifstream in(path);
        if (!in) {
            throw HostError(ErrorKind::vm_not_found,
                            console ? "no console log yet" : "no host agent log yet", path.string(),
                            "the log appears when the VM starts (`vmctl start`)");
        }
        std::deque<std::string> keep;
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r')
                line.pop_back();
            keep.push_back(std::move(line));
            if (tail_ > 0 && keep.size() > static_cast<size_t>(tail_))
                keep.pop_front();
        }
        lines.assign(keep.begin(), keep.end());
    } else {
        const std::string service = source_ == "engine" ? "dockerd" : source_;
        json r = vm.call_agent("logs", {{"service", service}, {"lines", tail_ > 0 ? tail_ : 0}},
                               std::chrono::seconds(30));
        if (r.is_object() && r.contains("lines") && r["lines"].is_array()) {
            for (const auto& l : r["lines"])
                lines.push_back(l.is_string() ? l.get<std::string>() : l.dump());
        } else if (r.is_object() && r.contains("text") && r["text"].is_string()) {
            std::stringstream ss(r["text"].get<std::string>());
            for (std::string line; std::getline(ss, line);) lines.push_back(line);
        } else {
            lines.push_back(r.dump());
        }
    }
    ctx.out().result({{"vm", vm.settings().vm_name}, {"source", source_}, {"lines", lines}},
                     [&](std::ostream& o) {
                         for (const auto& l : lines) o << l << "\n";
                     });
    return Exit::ok;
}

}  // namespace vmctl

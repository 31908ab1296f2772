#include "commands.hpp"
#include "cordon/subprocess.hpp"

namespace vmctl {

using namespace cordon::host;

CLI::App* DockerEnvCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "docker-env",
        "Print the shell line that points the docker CLI at the VM: eval \"$(vmctl docker-env)\"");
    return app_;
}

int DockerEnvCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    const std::string host = "unix://" + vm.paths().docker_socket.string();
    ctx.out().result({{"DOCKER_HOST", host}},
                     [&](std::ostream& o) { o << "export DOCKER_HOST=" << host << "\n"; });
    return Exit::ok;
}

CLI::App* DockerContextCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("context",
                                 "Create or update the docker context `cordon` that points at the "
                                 "VM (docker context create/update)");
    app_->add_flag("--use", use_, "Also make it the current context (docker context use cordon)");
    app_->add_option("--name", name_, "Name of the context")->capture_default_str();
    return app_;
}

int DockerContextCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    const std::string endpoint = "host=unix://" + vm.paths().docker_socket.string();
    auto docker = [&](std::vector<std::string> args) {
        args.insert(args.begin(), "docker");
        try {
            return cordon::run(args, std::chrono::seconds(30));
        } catch (const cordon::Error& e) {
            throw HostError(ErrorKind::generic, "cannot run the docker CLI: " + e.failure(),
                            "docker", "install the docker CLI (scripts/bootstrap does)");
        }
    };
    const bool exists = docker({"context", "inspect", name_}).ok();
    cordon::ProcessResult r =
        exists ? docker({"context", "update", name_, "--docker", endpoint})
               : docker({"context", "create", name_, "--description",
                         "Cordon VM " + vm.settings().vm_name, "--docker", endpoint});
    if (!r.ok()) {
        throw HostError(ErrorKind::generic,
                        "docker context " + std::string(exists ? "update" : "create") +
                            " failed: " + r.err + r.out,
                        name_);
    }
    bool used = false;
    if (use_) {
        cordon::ProcessResult u = docker({"context", "use", name_});
        if (!u.ok())
            throw HostError(ErrorKind::generic, "docker context use failed: " + u.err + u.out,
                            name_);
        used = true;
    }
    ctx.out().result({{"context", name_},
                      {"created", !exists},
                      {"docker_host", endpoint.substr(5)},
                      {"used", used}},
                     [&](std::ostream& o) {
                         o << "docker context " << name_ << (exists ? " updated" : " created")
                           << ": " << endpoint.substr(5) << "\n";
                         if (used)
                             o << "it is now the current context\n";
                         else
                             o << "use it with: docker --context " << name_
                               << " ...  or  docker context use " << name_ << "\n";
                     });
    return Exit::ok;
}

}  // namespace vmctl

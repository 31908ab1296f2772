#include "cordon/runtime/runc_args.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "cordon/error.hpp"

namespace cordon::runtime {
namespace {

// runc's global flags that take a value (runc 1.1).
constexpr std::array<std::string_view, 5> kGlobalValued = {"--root", "--log", "--log-format",
                                                           "--criu", "--rootless"};
// Flags of create/run/delete/exec that take a value.
constexpr std::array<std::string_view, 10> kCommandValued = {
    "--bundle",  "-b", "--pid-file", "--console-socket", "--preserve-fds",
    "--process", "-p", "--cwd",      "--user",           "-u"};

template <std::size_t N>
bool takes_value(std::string_view arg, const std::array<std::string_view, N>& list) {
    return std::find(list.begin(), list.end(), arg) != list.end();
}

}  // namespace

RuncCall parse_runc_args(const std::vector<std::string>& args) {
    RuncCall call;
    call.root = "/run/runc";
    std::size_t i = 0;
    auto value = [&](const std::string& flag) -> std::string {
        if (i + 1 >= args.size())
            throw Error("runc flag " + flag + " needs a value", "cordon-runc");
        return args[++i];
    };
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            const std::string key = a.substr(0, a.find('='));
            if (key == "--root")
                call.root = a.substr(a.find('=') + 1);
            if (key == "--log")
                call.log = a.substr(a.find('=') + 1);
            continue;
        }
        if (a == "--root") {
            call.root = value(a);
        } else if (a == "--log") {
            call.log = value(a);
        } else if (takes_value(a, kGlobalValued)) {
            value(a);
        } else if (!a.empty() && a.front() == '-') {
            continue;  // a boolean global flag (--debug, --systemd-cgroup)
        } else {
            call.command = a;
            ++i;
            break;
        }
    }
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--bundle=", 0) == 0) {
            call.bundle = a.substr(9);
        } else if (a == "--bundle" || a == "-b") {
            call.bundle = value(a);
        } else if (a.rfind("--", 0) == 0 && a.find('=') != std::string::npos) {
            continue;
        } else if (takes_value(a, kCommandValued)) {
            value(a);
        } else if (!a.empty() && a.front() == '-') {
            continue;
        } else if (call.container.empty()) {
            call.container = a;  // the first positional argument is the container id
        }
    }
    if ((call.command == "create" || call.command == "run") && call.bundle.empty())
        call.bundle = ".";
    return call;
}

bool started_as_shim(std::string_view argv0) {
    const auto slash = argv0.rfind('/');
    return (slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1)) == "runc";
}

std::string shim_refusal(std::string_view argv0, std::string_view command, bool user_namespaced) {
    if (!started_as_shim(argv0) || user_namespaced)
        return {};
    if (command == "create")
        return "this container has no user namespace of its own: it was created while isolation "
               "was off (its runtime is plain runc) and its settings were never checked by the "
               "Docker socket policy; with isolation on it would run as VM root, so it is not "
               "started. Remove it and create it again (docker rm NAME, then docker run / docker "
               "compose up)";
    if (command == "run")
        return "BuildKit build steps cannot run in the exclusive-ranges isolation mode (moby 20.10 "
               "runs them with plain runc, as VM root); build with DOCKER_BUILDKIT=0 or switch to "
               "the shared-range isolation (vmctl isolation on --shared-range)";
    return {};
}

}  // namespace cordon::runtime

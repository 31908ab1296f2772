#pragma once
// What the wrapper needs from a runc command line (containerd-shim-runc-v2 calls
// e.g. `runc --root R --log L --log-format json create --bundle B --pid-file P ID`).
#include <string>
#include <string_view>
#include <vector>

namespace cordon::runtime {

struct RuncCall {
    std::string command;    // "create", "delete", "start", ... (empty: none)
    std::string root;       // --root (runc's state folder), default /run/runc
    std::string log;        // --log, where runc (and we) write errors for the shim
    std::string bundle;     // create/run: --bundle/-b, default "."
    std::string container;  // the last positional argument of the command
};

// Throws cordon::Error when a flag that takes a value lacks it.
RuncCall parse_runc_args(const std::vector<std::string>& args);  // args without argv[0]

// True when started under the name "runc" (by path or not): through the runc shim.
bool started_as_shim(std::string_view argv0);

// Why the wrapper refuses `command` when started under the name `argv0`, or empty.
// Started as "runc" (through the runc shim, installed whenever isolation is on) it refuses
// `create` and `run` of a bundle that has no user namespace of its own
// (`user_namespaced`, see spec_rewrite.hpp): a container the plain engine created while
// isolation was off, or BuildKit's executor in the exclusive-ranges mode, which has no
// remap. Everything else (state, kill, delete...) goes to runc.
std::string shim_refusal(std::string_view argv0, std::string_view command, bool user_namespaced);

}  // namespace cordon::runtime

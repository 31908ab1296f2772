// TEMPORARY until common/ has cordon::rpc: the host library builds, every call fails clearly.
#include "cordon/host/agent_client.hpp"
#include "cordon/host/host_error.hpp"

namespace cordon::host {
std::unique_ptr<AgentClient> connect_agent(const std::filesystem::path& control_socket) {
    throw HostError(ErrorKind::agent_unreachable, "this build has no channel library (cordon::rpc)",
                    control_socket.string(), "rebuild after merging common/");
}
}  // namespace cordon::host

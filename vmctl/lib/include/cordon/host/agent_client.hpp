#pragma once
// Calls to the guest agent's RPC service through the host agent's control.sock.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace cordon::host {

class AgentClient {
  public:
    virtual ~AgentClient() = default;
    // Returns the result. Throws HostError(rpc) for an error reply from the guest,
    // HostError(agent_unreachable) when the connection fails or times out.
    virtual nlohmann::json call(const std::string& method, const nlohmann::json& params,
                                std::chrono::milliseconds timeout) = 0;
    // The same, passing notifications that arrive before the reply (e.g. "progress").
    // The default ignores them (fakes in tests).
    using NotificationHandler =
        std::function<void(const std::string& method, const nlohmann::json& params)>;
    virtual nlohmann::json call_notified(const std::string& method, const nlohmann::json& params,
                                         std::chrono::milliseconds timeout,
                                         const NotificationHandler& on_notification) {
        (void)on_notification;
        return call(method, params, timeout);
    }
};

// Connects to control.sock; throws HostError(agent_unreachable) naming the socket.
using AgentConnector =
    std::function<std::unique_ptr<AgentClient>(const std::filesystem::path& control_socket)>;
std::unique_ptr<AgentClient> connect_agent(const std::filesystem::path& control_socket);

}  // namespace cordon::host

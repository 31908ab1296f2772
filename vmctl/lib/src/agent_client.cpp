#include "cordon/host/agent_client.hpp"

#include "cordon/host/host_error.hpp"
#include "cordon/rpc/rpc.hpp"

namespace cordon::host {
namespace {

class RpcAgentClient final : public AgentClient {
  public:
    RpcAgentClient(rpc::BlockingClient client, std::string socket)
        : client_(std::move(client)), socket_(std::move(socket)) {}
    nlohmann::json call(const std::string& method, const nlohmann::json& params,
                        std::chrono::milliseconds timeout) override {
        return call_notified(method, params, timeout, {});
    }
    nlohmann::json call_notified(const std::string& method, const nlohmann::json& params,
                                 std::chrono::milliseconds timeout,
                                 const NotificationHandler& on_notification) override {
        try {
            return client_.call(method, params, timeout, on_notification);
        } catch (const rpc::CallError& e) {
            throw HostError(
                kind_for_rpc_code(e.code()),
                "the guest agent refused '" + method + "': " + e.failure() + " [" + e.code() + "]",
                {}, e.hint(), e.code());
        } catch (const cordon::Error& e) {
            throw HostError(ErrorKind::agent_unreachable,
                            "no answer from the guest agent to '" + method + "': " + e.failure(),
                            socket_,
                            "check `vmctl status` and `vmctl logs console`; the host agent log is "
                            "hostagent.log "
                            "in the VM's state folder");
        }
    }

  private:
    rpc::BlockingClient client_;
    std::string socket_;
};

}  // namespace

std::unique_ptr<AgentClient> connect_agent(const std::filesystem::path& control_socket) {
    try {
        return std::make_unique<RpcAgentClient>(
            rpc::BlockingClient::connect(control_socket.string()), control_socket.string());
    } catch (const cordon::Error& e) {
        throw HostError(ErrorKind::agent_unreachable, "cannot reach the host agent: " + e.failure(),
                        control_socket.string(), "start the VM with `vmctl start`");
    }
}

}  // namespace cordon::host

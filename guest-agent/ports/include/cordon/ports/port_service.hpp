#pragma once
// Published ports in the guest agent (cordon::agent owns one): follows dockerd
// (cordon::EngineWatcher), answers `ports` and streams `ports.watch` to the host agent, and serves
// the channel services "port:tcp:<host port>" by connecting to the docker-proxy that listens on
// that port in the VM, and "port:udp:<host port>" (one stream per host-side client flow,
// framed datagrams) by relaying through a UDP socket connected to that docker-proxy.
#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "cordon/channel/session.hpp"
#include "cordon/ports/engine_watch.hpp"
#include "cordon/rpc/rpc.hpp"

namespace cordon::ports {

class UdpRelay;
struct UdpRelayCounters;

class PortService {
  public:
    PortService(boost::asio::io_context& io, std::string dockerd_socket);
    ~PortService();
    PortService(const PortService&) = delete;
    PortService& operator=(const PortService&) = delete;

    void register_methods(rpc::Server& server);
    // Starts following dockerd (call once the engine is set up; it retries until dockerd
    // answers).
    void start();
    // Ends every watch with a final reply and stops following dockerd.
    void stop();

    static bool is_port_service(const std::string& service) {
        return service.rfind("port:", 0) == 0;
    }
    void on_stream(std::shared_ptr<channel::Stream> stream, const std::string& service);

    rpc::json status() const;

  private:
    void on_change(const std::vector<Forward>& now, const Diff& diff);
    void start_udp(std::shared_ptr<channel::Stream> stream, const Forward& fwd);
    rpc::json snapshot(const Diff* diff) const;

    boost::asio::io_context& io_;
    EngineWatcher watcher_;
    std::vector<std::shared_ptr<rpc::Call>> watches_;
    std::uint64_t seq_ = 0;
    std::uint64_t connections_ = 0;
    std::uint64_t refused_ = 0;
    std::shared_ptr<UdpRelayCounters> udp_;
    std::vector<std::weak_ptr<UdpRelay>> udp_flows_;
    std::shared_ptr<bool> alive_;
};

}  // namespace cordon::ports

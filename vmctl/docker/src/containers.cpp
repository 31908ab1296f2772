// Container calls of the host Docker client: list, start/stop/restart/remove,
// inspect, one stats sample and the logs.
#include "cordon/error.hpp"
#include "cordon/host/docker/client.hpp"
#include "cordon/host/docker/logs.hpp"

using nlohmann::json;

namespace cordon::host::docker {
namespace {

std::string container_path(const std::string& id) {
    return "/containers/" + path_segment(id);
}

}  // namespace

std::vector<Container> Client::list_containers(bool all) {
    return parse_containers(get_json(all ? "/containers/json?all=1" : "/containers/json"));
}

void Client::start_container(const std::string& id) {
    expect_ok("POST", container_path(id) + "/start", {304});
}

void Client::stop_container(const std::string& id, int timeout_seconds) {
    expect_ok("POST", container_path(id) + "/stop?t=" + std::to_string(timeout_seconds), {304});
}

void Client::restart_container(const std::string& id, int timeout_seconds) {
    expect_ok("POST", container_path(id) + "/restart?t=" + std::to_string(timeout_seconds));
}

void Client::remove_container(const std::string& id, bool force) {
    expect_ok("DELETE", container_path(id) + (force ? "?force=1" : "?force=0"));
}

json Client::inspect_container(const std::string& id) {
    json j = get_json(container_path(id) + "/json");
    if (!j.is_object()) {
        throw Error("the engine's inspect answer is not a JSON object",
                    "GET " + container_path(id) + "/json");
    }
    return j;
}

ContainerStats Client::container_stats(const std::string& id) {
    return parse_stats(get_json(container_path(id) + "/stats?stream=false"));
}

std::string Client::container_logs(const std::string& id, int tail, std::int64_t since,
                                   bool timestamps) {
    std::string target = container_path(id) + "/logs?stdout=1&stderr=1";
    target += "&tail=" + (tail < 0 ? std::string("all") : std::to_string(tail));
    if (since > 0)
        target += "&since=" + std::to_string(since);
    if (timestamps)
        target += "&timestamps=1";
    Response r = expect_ok("GET", target);
    return demux_logs(r.body, r.content_type);
}

}  // namespace cordon::host::docker

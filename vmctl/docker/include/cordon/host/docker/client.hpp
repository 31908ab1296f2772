#pragma once
// A small, synchronous Docker Engine API client over a unix socket (HTTP/1.1,
// Boost.Beast). The desktop app reads the containers through the host agent's
// docker.sock with it, so it sees exactly what the policy proxy lets through.
// Every failure throws cordon::Error naming the request, the socket and, for an
// engine or proxy refusal, the engine's own message. The desktop app's container,
// image and volume pages act only through it.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cordon/host/docker/objects.hpp"

namespace cordon::host::docker {

struct Response {
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

class Client {
  public:
    explicit Client(std::filesystem::path socket,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

    const std::filesystem::path& socket() const { return socket_; }

    // One request on a fresh connection. Throws cordon::Error when the socket is
    // missing, the connection fails or times out, or the reply is not HTTP.
    // Any HTTP status is returned as it is.
    Response request(const std::string& method, const std::string& target,
                     const std::string& body = {});

    // GET target, expecting 2xx and a JSON body. A non-2xx reply throws
    // cordon::Error carrying the engine's "message".
    nlohmann::json get_json(const std::string& target);

    // GET /_ping; true when the engine answers "OK".
    bool ping();

    // Sends a request that must succeed: a 2xx (or one of also_ok, e.g. 304 "already
    // started") is returned, anything else throws cordon::Error with the engine's
    // message and a hint for 403 (policy), 404 (gone) and 409 (in use).
    Response expect_ok(const std::string& method, const std::string& target,
                       std::vector<unsigned> also_ok = {});

    // GET /containers/json (all=true includes stopped containers).
    std::vector<Container> list_containers(bool all = true);
    // POST /containers/{id}/start|stop|restart; an "already so" 304 counts as done.
    void start_container(const std::string& id);
    void stop_container(const std::string& id, int timeout_seconds = 10);
    void restart_container(const std::string& id, int timeout_seconds = 10);
    // DELETE /containers/{id} (force kills a running one; volumes=false keeps its
    // anonymous volumes).
    void remove_container(const std::string& id, bool force);
    // GET /containers/{id}/json, as the engine wrote it.
    nlohmann::json inspect_container(const std::string& id);
    // One sample (stream=false: the engine waits for a second reading, about 1 s,
    // so the CPU share is known).
    ContainerStats container_stats(const std::string& id);
    // The logs body, demultiplexed. tail < 0: all; since: unix seconds, 0 = from the start.
    std::string container_logs(const std::string& id, int tail, std::int64_t since,
                               bool timestamps);

    // GET /images/json; DELETE /images/{id} (force=false: refused while a container uses it).
    std::vector<Image> list_images();
    void remove_image(const std::string& id, bool force);

    // GET /volumes; DELETE /volumes/{name} (refused while a container uses it).
    std::vector<Volume> list_volumes();
    void remove_volume(const std::string& name, bool force);

  private:
    std::filesystem::path socket_;
    std::chrono::milliseconds timeout_;
};

// A path segment with everything but unreserved characters and ':' percent-encoded.
std::string path_segment(const std::string& text);

// The engine's error text from a non-2xx body ({"message": "..."}), or the raw
// body (shortened) when it is not that shape.
std::string engine_message(const std::string& body);

}  // namespace cordon::host::docker

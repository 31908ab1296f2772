#pragma once
// A small, synchronous Docker Engine API client over a unix socket (HTTP/1.1,
// Boost.Beast). The desktop app reads the containers through the host agent's
// docker.sock with it, so it sees exactly what the policy proxy lets through.
// Every failure throws cordon::Error naming the request, the socket and, for an
// engine or proxy refusal, the engine's own message.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace cordon::host::docker {

struct Container {
    std::string id;            // full id
    std::string name;          // without the leading '/'
    std::string image;         // as the engine reports it ("busybox:latest" or an id)
    std::string state;         // "running", "exited", "created", ...
    std::string status;        // "Up 3 minutes", "Exited (0) 2 seconds ago"
    std::int64_t created = 0;  // unix seconds
};

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

    // GET /containers/json (all=true includes stopped containers).
    std::vector<Container> list_containers(bool all = true);

  private:
    std::filesystem::path socket_;
    std::chrono::milliseconds timeout_;
};

// Parses the engine's /containers/json answer. Throws cordon::Error for a body
// that is not a list of container objects.
std::vector<Container> parse_containers(const nlohmann::json& list);

// The engine's error text from a non-2xx body ({"message": "..."}), or the raw
// body (shortened) when it is not that shape.
std::string engine_message(const std::string& body);

}  // namespace cordon::host::docker

#include "cordon/host/docker/client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <system_error>

#include "cordon/error.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using nlohmann::json;

namespace cordon::host::docker {
namespace {

using Stream = beast::basic_stream<asio::local::stream_protocol>;

std::string shorten(std::string text, std::size_t max = 300) {
    if (text.size() > max) {
        text.resize(max);
        text += "...";
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

std::string string_field(const json& obj, const char* key) {
    auto it = obj.find(key);
    if (it == obj.end() || !it->is_string())
        return {};
    return it->get<std::string>();
}

}  // namespace

Client::Client(std::filesystem::path socket, std::chrono::milliseconds timeout)
    : socket_(std::move(socket)), timeout_(timeout) {}

Response Client::request(const std::string& method, const std::string& target,
                         const std::string& body) {
    const std::string what_req = method + " " + target;
    std::error_code fs_ec;
    if (!std::filesystem::exists(socket_, fs_ec)) {
        throw Error("the Docker socket does not exist (" + what_req + ")", socket_.string(),
                    "start the VM: its host agent serves this socket while the VM runs");
    }
    if (socket_.native().size() >= sizeof(sockaddr_un::sun_path)) {
        throw Error("the Docker socket path is too long for a unix socket", socket_.string(),
                    "use a shorter runtime folder (CORDON_RUNTIME_DIR)");
    }

    asio::io_context ioc;
    Stream stream(ioc);
    beast::flat_buffer buffer;
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "docker");
    req.set(http::field::user_agent, "cordon-desktop");
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);

    boost::system::error_code result;
    const char* stage = "connect";
    stream.expires_after(timeout_);
    stream.async_connect(
        asio::local::stream_protocol::endpoint(socket_.string()),
        [&](boost::system::error_code ec) {
            if (ec) {
                result = ec;
                return;
            }
            stage = "send the request";
            http::async_write(stream, req, [&](boost::system::error_code wec, std::size_t) {
                if (wec) {
                    result = wec;
                    return;
                }
                stage = "read the reply";
                http::async_read(stream, buffer, parser,
                                 [&](boost::system::error_code rec, std::size_t) { result = rec; });
            });
        });
    ioc.run();
    if (result) {
        std::string why = result == beast::error::timeout
                              ? "no answer within " + std::to_string(timeout_.count()) + " ms"
                              : result.message();
        throw Error(
            "cannot " + std::string(stage) + " for " + what_req + ": " + why, socket_.string(),
            result == asio::error::connection_refused
                ? "nothing listens on the socket: restart the VM so its host agent serves it again"
                : "check that the VM is running and its host agent is alive");
    }
    auto& res = parser.get();
    Response out;
    out.status = res.result_int();
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    return out;
}

std::string engine_message(const std::string& body) {
    json j = json::parse(body, nullptr, false);
    if (j.is_object()) {
        std::string m = string_field(j, "message");
        if (!m.empty())
            return m;
    }
    return shorten(body);
}

json Client::get_json(const std::string& target) {
    Response r = request("GET", target);
    if (r.status < 200 || r.status >= 300) {
        std::string hint;
        if (r.status == 403)
            hint = "Cordon's policy refused it; the Audit page lists refused requests";
        throw Error("the engine refused GET " + target + " (HTTP " + std::to_string(r.status) +
                        "): " + engine_message(r.body),
                    socket_.string(), hint);
    }
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) {
        throw Error(
            "the engine's answer to GET " + target + " is not JSON: " + shorten(r.body, 120),
            socket_.string());
    }
    return j;
}

bool Client::ping() {
    Response r = request("GET", "/_ping");
    return r.status == 200 && r.body == "OK";
}

std::vector<Container> parse_containers(const json& list) {
    if (!list.is_array()) {
        throw Error("the engine's container list is not a JSON array", "GET /containers/json");
    }
    std::vector<Container> out;
    out.reserve(list.size());
    for (const auto& c : list) {
        if (!c.is_object()) {
            throw Error("an entry of the engine's container list is not an object",
                        "GET /containers/json");
        }
        Container x;
        x.id = string_field(c, "Id");
        if (x.id.empty()) {
            throw Error("an entry of the engine's container list has no \"Id\"",
                        "GET /containers/json");
        }
        auto names = c.find("Names");
        if (names != c.end() && names->is_array() && !names->empty() &&
            names->front().is_string()) {
            x.name = names->front().get<std::string>();
            if (!x.name.empty() && x.name.front() == '/')
                x.name.erase(0, 1);
        }
        if (x.name.empty())
            x.name = x.id.substr(0, 12);
        x.image = string_field(c, "Image");
        x.state = string_field(c, "State");
        x.status = string_field(c, "Status");
        auto created = c.find("Created");
        if (created != c.end() && created->is_number_integer())
            x.created = created->get<std::int64_t>();
        out.push_back(std::move(x));
    }
    return out;
}

std::vector<Container> Client::list_containers(bool all) {
    return parse_containers(get_json(all ? "/containers/json?all=1" : "/containers/json"));
}

}  // namespace cordon::host::docker

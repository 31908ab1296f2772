#include "cordon/host/docker/client.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
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
        auto m = j.find("message");
        if (m != j.end() && m->is_string() && !m->get<std::string>().empty())
            return m->get<std::string>();
    }
    return shorten(body);
}

Response Client::expect_ok(const std::string& method, const std::string& target,
                           std::vector<unsigned> also_ok) {
    Response r = request(method, target);
    const bool ok = (r.status >= 200 && r.status < 300) ||
                    std::find(also_ok.begin(), also_ok.end(), r.status) != also_ok.end();
    if (ok)
        return r;
    std::string hint;
    if (r.status == 403)
        hint = "Cordon's policy refused it; the Audit page lists refused requests";
    else if (r.status == 404)
        hint = "it is gone or was never there: refresh the list";
    else if (r.status == 409)
        hint = "it is in use: stop or remove what uses it first";
    else if (r.status >= 500)
        hint = "the engine failed; its log is on the Logs page (Docker engine)";
    throw Error("the engine refused " + method + " " + target + " (HTTP " +
                    std::to_string(r.status) + "): " + engine_message(r.body),
                socket_.string(), hint);
}

json Client::get_json(const std::string& target) {
    Response r = expect_ok("GET", target);
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded()) {
        throw Error(
            "the engine's answer to GET " + target + " is not JSON: " + shorten(r.body, 120),
            socket_.string());
    }
    return j;
}

std::string path_segment(const std::string& text) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

bool Client::ping() {
    Response r = request("GET", "/_ping");
    return r.status == 200 && r.body == "OK";
}

}  // namespace cordon::host::docker

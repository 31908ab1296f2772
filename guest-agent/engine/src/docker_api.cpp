#include "cordon/engine/docker_api.hpp"

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include "cordon/error.hpp"
#include "cordon/percent_encode.hpp"

namespace cordon::engine {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;

namespace {

struct Connection {
    asio::io_context io;
    Socket socket{io};

    Connection(const std::string& path, std::chrono::seconds timeout) {
        boost::system::error_code ec;
        socket.connect(asio::local::stream_protocol::endpoint(path), ec);
        if (ec)
            throw Error("cannot connect to dockerd: " + ec.message(), path,
                        "dockerd is not running; 'vmctl logs engine' shows why");
        // Blocking calls: a dockerd that stops answering must not hang the agent's worker.
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(timeout.count());
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
};

std::string engine_message(const std::string& body) {
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
    return body.substr(0, 300);
}

}  // namespace

UnixDockerApi::UnixDockerApi(std::string socket_path, std::chrono::seconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

namespace {

http::response<http::string_body> call(const std::string& socket, std::chrono::seconds timeout,
                                       http::verb verb, const std::string& target,
                                       const std::string& body = {}) {
    Connection c(socket, timeout);
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "docker");
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    boost::system::error_code ec;
    http::write(c.socket, req, ec);
    if (!ec) http::read(c.socket, buf, parser, ec);
    if (ec) throw Error("dockerd call " + target + " failed: " + ec.message(), socket);
    return parser.release();
}

void expect_2xx(const http::response<http::string_body>& res, const std::string& what) {
    if (res.result_int() / 100 != 2)
        throw Error(what + " failed with HTTP " + std::to_string(res.result_int()) + ": " + engine_message(res.body()));
}

}  // namespace

bool UnixDockerApi::ping() {
    try {
        auto res = call(socket_path_, timeout_, http::verb::get, "/_ping");
        return res.result_int() == 200;
    } catch (const Error&) {
        return false;
    }
}

std::string UnixDockerApi::version() {
    auto res = call(socket_path_, timeout_, http::verb::get, "/version");
    expect_2xx(res, "reading the engine version");
    auto j = nlohmann::json::parse(res.body(), nullptr, false);
    if (!j.is_object() || !j.contains("Version") || !j["Version"].is_string())
        throw Error("dockerd's /version answer has no Version", socket_path_);
    return j["Version"].get<std::string>();
}

std::vector<ContainerSummary> UnixDockerApi::running_containers() {
    auto res = call(socket_path_, timeout_, http::verb::get, "/containers/json");
    expect_2xx(res, "listing containers");
    auto j = nlohmann::json::parse(res.body(), nullptr, false);
    if (!j.is_array()) throw Error("dockerd's container list is not a JSON array", socket_path_);
    std::vector<ContainerSummary> out;
    for (const auto& c : j) {
        ContainerSummary s;
        s.id = c.value("Id", "");
        s.image = c.value("Image", "");
        if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() && c["Names"][0].is_string()) {
            s.name = c["Names"][0].get<std::string>();
            if (!s.name.empty() && s.name[0] == '/') s.name.erase(0, 1);
        }
        out.push_back(std::move(s));
    }
    return out;
}

void UnixDockerApi::stop_container(const std::string& id, std::chrono::seconds grace) {
    auto res = call(socket_path_, timeout_, http::verb::post,
                    "/containers/" + cordon::percent_encode(id) + "/stop?t=" + std::to_string(grace.count()));
    if (res.result_int() == 304) return;  // already stopped
    expect_2xx(res, "stopping container " + id);
}

std::vector<std::string> UnixDockerApi::image_tags() {
    auto res = call(socket_path_, timeout_, http::verb::get, "/images/json");
    expect_2xx(res, "listing images");
    auto j = nlohmann::json::parse(res.body(), nullptr, false);
    if (!j.is_array()) throw Error("dockerd's image list is not a JSON array", socket_path_);
    std::vector<std::string> tags;
    for (const auto& img : j) {
        if (!img.contains("RepoTags") || !img["RepoTags"].is_array()) continue;
        for (const auto& t : img["RepoTags"]) {
            if (t.is_string() && t.get<std::string>() != "<none>:<none>") tags.push_back(t.get<std::string>());
        }
    }
    return tags;
}

void UnixDockerApi::save_images(const std::vector<std::string>& tags, const std::string& tar_path) {
    std::string target = "/images/get?";
    for (std::size_t i = 0; i < tags.size(); ++i) target += (i ? "&names=" : "names=") + cordon::percent_encode(tags[i]);
    Connection c(socket_path_, timeout_);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "docker");
    boost::system::error_code ec;
    http::write(c.socket, req, ec);
    if (ec) throw Error("cannot ask dockerd to save images: " + ec.message(), socket_path_);
    beast::flat_buffer buf;
    http::response_parser<http::file_body> parser;
    parser.body_limit(boost::none);  // images are as large as they are; the disk is the limit
    parser.get().body().open(tar_path.c_str(), beast::file_mode::write, ec);
    if (ec) throw Error("cannot create the image archive: " + ec.message(), tar_path, "check free space on the data disk");
    http::read(c.socket, buf, parser, ec);
    if (ec) throw Error("saving images failed: " + ec.message(), tar_path, "check free space on the data disk");
    if (parser.get().result_int() != 200)
        throw Error("dockerd refused to save images (HTTP " + std::to_string(parser.get().result_int()) + ")", tar_path);
}

void UnixDockerApi::load_images(const std::string& tar_path) {
    Connection c(socket_path_, timeout_);
    http::request<http::file_body> req{http::verb::post, "/images/load?quiet=1", 11};
    req.set(http::field::host, "docker");
    req.set(http::field::content_type, "application/x-tar");
    boost::system::error_code ec;
    req.body().open(tar_path.c_str(), beast::file_mode::scan, ec);
    if (ec) throw Error("cannot open the image archive: " + ec.message(), tar_path);
    req.prepare_payload();
    http::write(c.socket, req, ec);
    if (ec) throw Error("cannot send images to dockerd: " + ec.message(), tar_path);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 * 1024 * 1024);
    http::read(c.socket, buf, parser, ec);
    if (ec) throw Error("loading images failed: " + ec.message(), tar_path);
    const auto& res = parser.get();
    if (res.result_int() != 200) throw Error("dockerd refused to load images: " + engine_message(res.body()), tar_path);
    // A failed load can still answer 200 with an error in the JSON stream.
    if (res.body().find("\"error\"") != std::string::npos)
        throw Error("dockerd could not load the images: " + res.body().substr(0, 300), tar_path);
}

}  // namespace cordon::engine

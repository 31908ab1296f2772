// The request path of the proxy: head parsing, chunked decoding (with the input split
// at arbitrary points, as reads split it), then the policy's decision on the head.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "cordon/proxy/http.hpp"
#include "cordon/proxy/policy.hpp"

// Go's media type reading (ToLower + TrimSpace over UTF-8): the result is trimmed, and
// reading it again changes nothing (Go's functions are idempotent on their output).
void check_media_type(std::string_view in) {
    std::string mt = cordon::http::go_media_type(in);
    if (cordon::http::go_media_type(mt) != mt)
        std::abort();
    if (!mt.empty() && (mt.front() == ' ' || mt.back() == ' ' || mt.front() == '\t'))
        std::abort();
    if (mt.find(';') != std::string::npos)
        std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    check_media_type(in.substr(0, 256));
    cordon::http::RequestHead h;
    std::string err;
    auto st = cordon::http::parse_request_head(in, h, err);
    if (st == cordon::http::Parse::done) {
        if (h.find("content-type") && *h.find("content-type") != h.content_type)
            std::abort();  // the one Content-Type is the one classified
        if (h.size > in.size())
            std::abort();
        if (h.content_length && h.chunked)
            std::abort();  // smuggling must never parse
        static cordon::policy::Policy policy([] {
            cordon::policy::PolicyConfig c;
            c.fs_root = "/nonexistent-cordon-fuzz-root";
            return c;
        }());
        auto d =
            policy.check_head({h.method, h.target, h.content_type, cordon::policy::Role::host});
        (void)d;
        std::string out = cordon::http::serialize_request_head(
            h, h.minor == 1 ? cordon::http::Framing::chunked : cordon::http::Framing::length, 0,
            h.upgrade);
        // Serializing may add up to three header lines (framing, Connection, Upgrade) and
        // normalises "name:value" to "name: value"; dockerd allows far more than our limits,
        // so the re-parse only has to fit within limits grown by that much.
        cordon::http::Limits grown;
        grown.max_headers += 3;
        grown.max_head = 2 * grown.max_head + 256;
        cordon::http::RequestHead again;
        if (cordon::http::parse_request_head(out, again, err, grown) != cordon::http::Parse::done)
            std::abort();
        if (again.target != h.target || again.method != h.method)
            std::abort();
        // the rest is a chunked body, fed in pieces whose sizes come from the data
        std::string_view body = in.substr(h.size);
        cordon::http::ChunkedDecoder whole, pieces;
        std::vector<std::string_view> a, b;
        whole.feed(body, a);
        std::size_t off = 0, step = 1;
        std::string got_b;
        while (off < body.size() && !pieces.done() && !pieces.failed()) {
            std::string_view part = body.substr(off, step);
            b.clear();
            std::size_t used = pieces.feed(part, b);
            for (auto s : b) got_b.append(s);
            off += used;
            if (used < part.size())
                break;
            step = step % 7 + 1;
        }
        std::string got_a;
        for (auto s : a) got_a.append(s);
        if (whole.done() != pieces.done() || (whole.done() && got_a != got_b))
            std::abort();
    }
    cordon::http::ResponseHead rh;
    if (cordon::http::parse_response_head(in, rh, err) == cordon::http::Parse::done &&
        cordon::http::is_hijack_head(rh)) {
        // A hijack head (the proxy tunnels after it) is a 200 without any framing.
        if (rh.status != 200 || rh.content_length || rh.chunked || rh.size > in.size())
            std::abort();
        for (const auto& f : rh.headers)
            if (cordon::http::iequals(f.name, "transfer-encoding") ||
                cordon::http::iequals(f.name, "content-length"))
                std::abort();
    }
    return 0;
}

// The proxy's HTTP/1.1 layer on its own: strict request heads, chunked decoding split at
// every byte, and the canonical head forwarded to dockerd.
#include "cordon/proxy/http.hpp"

#include <gtest/gtest.h>

namespace {

using namespace cordon::http;

Parse parse(const std::string& s, RequestHead& h) {
    std::string err;
    return parse_request_head(s, h, err);
}

TEST(HttpRequestHead, ParsesFramingConnectionAndUpgrade) {
    RequestHead h;
    const std::string msg =
        "POST /v1.41/exec/e/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
        "Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"Detach\":false}";
    ASSERT_EQ(parse(msg, h), Parse::done);
    EXPECT_EQ(h.method, "POST");
    EXPECT_EQ(h.target, "/v1.41/exec/e/start");
    EXPECT_EQ(*h.content_length, 15u);
    EXPECT_TRUE(h.upgrade);
    EXPECT_EQ(h.upgrade_protocol, "tcp");
    EXPECT_TRUE(h.keep_alive);
    EXPECT_EQ(h.content_type, "application/json");
    EXPECT_EQ(h.size, msg.find("\r\n\r\n") + 4);
}

TEST(HttpRequestHead, IncompleteUntilTheBlankLine) {
    RequestHead h;
    std::string full = "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
    for (std::size_t n = 0; n < full.size(); ++n)
        EXPECT_EQ(parse(full.substr(0, n), h), Parse::incomplete) << n;
    EXPECT_EQ(parse(full, h), Parse::done);
}

TEST(HttpRequestHead, RefusesAmbiguousInput) {
    const char* bad[] = {
        "GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: 0x1\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nContent-Length: -1\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nX: y\r\n\tz\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nX\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nX y: z\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nX: a\rb\r\n\r\n",
        "GET /_ping HTTP/1.1\nHost: d\r\n\r\n",
        "\r\nGET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        "GET /_ping\r\nHost: d\r\n\r\n",
        "GET /_ping HTTP/1.1 x\r\nHost: d\r\n\r\n",
        "GET /a b HTTP/1.1\r\nHost: d\r\n\r\n",
        "GET /\x80 HTTP/1.1\r\nHost: d\r\n\r\n",
        "G(T /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
        "GET /_ping HTTP/1.2\r\nHost: d\r\n\r\n",
        "GET /_ping HTTP/1.1\r\nHost: d\r\nExpect: 200-ok\r\n\r\n",
    };
    for (const char* b : bad) {
        RequestHead h;
        EXPECT_EQ(parse(b, h), Parse::error) << b;
    }
}

TEST(HttpRequestHead, Http10DefaultsToClose) {
    RequestHead h;
    ASSERT_EQ(parse("GET /_ping HTTP/1.0\r\n\r\n", h), Parse::done);
    EXPECT_TRUE(h.close);
    ASSERT_EQ(parse("GET /_ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", h), Parse::done);
    EXPECT_FALSE(h.close);
    ASSERT_EQ(parse("GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: keep-alive, close\r\n\r\n", h),
              Parse::done);
    EXPECT_TRUE(h.close);
}

TEST(HttpChunked, DecodesTheSameWhateverTheSplit) {
    std::string body = "5;ext=1\r\nhello\r\n1\r\n \r\nB\r\nworld!!!!!!\r\n0\r\n\r\nNEXT";
    for (std::size_t split = 0; split <= body.size(); ++split) {
        ChunkedDecoder d;
        std::vector<std::string_view> spans;
        std::string out;
        std::size_t used = d.feed(std::string_view(body).substr(0, split), spans);
        for (auto s : spans) out.append(s);
        spans.clear();
        used += d.feed(std::string_view(body).substr(used), spans);
        for (auto s : spans) out.append(s);
        ASSERT_TRUE(d.done()) << split;
        EXPECT_EQ(out, "hello world!!!!!!");
        EXPECT_EQ(body.substr(used), "NEXT");
        EXPECT_EQ(d.total(), 17u);
    }
}

TEST(HttpChunked, RefusesMalformedChunks) {
    for (const char* bad :
         {"g\r\nx\r\n0\r\n\r\n", "\r\n", "1\nx\r\n0\r\n\r\n", "1\r\nxy\r\n", "1 \r\nx\r\n",
          "11111111111111111\r\n", "0\r\nTrailer: x\r\n\r\n", "0\r\n\n", "1;a\nb\r\n"}) {
        ChunkedDecoder d;
        std::vector<std::string_view> spans;
        d.feed(bad, spans);
        EXPECT_TRUE(d.failed()) << bad;
    }
    ChunkedDecoder trailers(true);  // responses from dockerd may carry trailers
    std::vector<std::string_view> spans;
    trailers.feed("0\r\nX-A: b\r\n\r\n", spans);
    EXPECT_TRUE(trailers.done());
}

TEST(HttpSerialize, CanonicalHeadForDockerd) {
    RequestHead h;
    ASSERT_EQ(parse("POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: "
                    "chunked\r\nConnection: "
                    "keep-alive, Upgrade\r\nUpgrade: h2c\r\nExpect: 100-continue\r\nKeep-Alive: "
                    "5\r\nTE: trailers\r\n"
                    "X-Registry-Auth: abc\r\n\r\n",
                    h),
              Parse::done);
    std::string out = serialize_request_head(h, Framing::length, 42, false);
    EXPECT_EQ(out,
              "POST /v1.41/images/load HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: "
              "abc\r\nContent-Length: 42\r\n\r\n");
    std::string up = serialize_request_head(h, Framing::chunked, 0, true);
    EXPECT_NE(up.find("Transfer-Encoding: chunked\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"),
              std::string::npos);
}

bool hijack(const std::string& head) {
    ResponseHead r;
    std::string err;
    if (parse_response_head(head, r, err) != Parse::done)
        return false;
    return is_hijack_head(r);
}

TEST(HttpResponseHead, DockerdsHijackHeadIsRecognisedExactly) {
    // What moby 20.10 writes for attach / exec start without Upgrade (exec start adds the
    // middleware's headers).
    EXPECT_TRUE(
        hijack("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"));
    EXPECT_TRUE(
        hijack("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nApi-Version: "
               "1.41\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24 "
               "(linux)\r\n\r\n"));
    EXPECT_TRUE(hijack(
        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.docker.multiplexed-stream\r\n\r\n"));
    // Not a hijack: framing, another status or type, no type, two types.
    EXPECT_FALSE(hijack(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nContent-Length: "
        "0\r\n\r\n"));
    EXPECT_FALSE(hijack(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nTransfer-Encoding: "
        "chunked\r\n\r\n"));
    EXPECT_FALSE(hijack(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nTransfer-Encoding: "
        "identity\r\n\r\n"));
    EXPECT_FALSE(hijack(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n"));
    EXPECT_FALSE(hijack("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"));
    EXPECT_FALSE(hijack("HTTP/1.1 200 OK\r\n\r\n"));
    EXPECT_FALSE(hijack(
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\nContent-Type: "
        "application/vnd.docker.raw-stream\r\n\r\n"));
    EXPECT_FALSE(
        hijack("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-streamx\r\n\r\n"));
}

TEST(HttpResponseHead, FramingOfDockerdAnswers) {
    ResponseHead r;
    std::string err;
    ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK", r, err),
              Parse::done);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(*r.content_length, 2u);
    ASSERT_EQ(parse_response_head("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\n\r\n", r, err),
              Parse::done);
    EXPECT_EQ(r.status, 101);
    ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", r, err),
              Parse::done);
    EXPECT_TRUE(r.chunked);
    ASSERT_EQ(parse_response_head("HTTP/1.0 200 OK\r\n\r\n", r, err), Parse::done);
    EXPECT_TRUE(r.close);
    EXPECT_EQ(
        parse_response_head(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", r, err),
        Parse::error);
    EXPECT_EQ(parse_response_head("OK", r, err), Parse::incomplete);
    EXPECT_EQ(parse_response_head("OK\r\n\r\n", r, err), Parse::error);
    EXPECT_EQ(json_response(403, "Forbidden", "{}", true),
              "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: "
              "2\r\nConnection: "
              "close\r\n\r\n{}");
}

}  // namespace

namespace {

using namespace cordon::http;

TEST(HttpGoMediaType, ClassifiesLikeGosParseMediaType) {
    EXPECT_EQ(go_media_type("application/json"), "application/json");
    EXPECT_EQ(go_media_type(" Application/X-WWW-Form-Urlencoded ; charset=utf-8"),
              "application/x-www-form-urlencoded");
    // U+00A0 and U+0085 are white space for strings.TrimSpace
    EXPECT_TRUE(is_go_form("application/x-www-form-urlencoded\xC2\xA0"));
    EXPECT_TRUE(is_go_form("\xC2\x85multipart/form-data"));
    EXPECT_TRUE(is_go_form("\xE3\x80\x80multipart/form-data;boundary=x"));
    // U+0130 lowers to 'i', U+212A (Kelvin) to 'k'
    EXPECT_TRUE(
        is_go_form("appl\xC4\xB0"
                   "cation/x-www-form-urlencoded"));
    EXPECT_TRUE(is_go_form("application/x-www-form-urlencoded"));
    EXPECT_TRUE(is_go_form("multipart/form-data; broken parameter"));
    // legitimate twins
    EXPECT_FALSE(is_go_form("application/json"));
    EXPECT_FALSE(is_go_form("application/x-tar"));
    EXPECT_FALSE(is_go_form(""));
    // invalid UTF-8 becomes U+FFFD, which is neither space nor ASCII: no form
    EXPECT_FALSE(is_go_form("application/x-www-form-urlencoded\xC2"));
    EXPECT_EQ(go_media_type("a\xFF"), "a\xEF\xBF\xBD");
    // U+212B (Angstrom) lowers to a non-ASCII letter: never a form type
    EXPECT_FALSE(is_go_form("multipart/form-data\xE2\x84\xAB"));
}

TEST(HttpGoMediaType, KelvinFoldsToK) {
    EXPECT_EQ(go_media_type("\xE2\x84\xAA"), "k");
}

TEST(HttpRequestHead, RefusesRepeatedHeadersThatAreActedOn) {
    for (const char* h :
         {"Content-Type: application/x-www-form-urlencoded\r\nContent-Type: application/json",
          "Content-Type: application/json\r\ncontent-type: application/json",
          "Upgrade: tcp\r\nUpgrade: h2c", "Connection: close\r\nConnection: upgrade",
          "Expect: 100-continue\r\nExpect: 100-continue",
          "X-Registry-Auth: a\r\nX-Registry-Auth: b"}) {
        RequestHead head;
        std::string err;
        std::string msg = std::string("POST /v1.41/build HTTP/1.1\r\nHost: d\r\n") + h + "\r\n\r\n";
        EXPECT_EQ(parse_request_head(msg, head, err), Parse::error) << h;
        EXPECT_NE(err.find("more than one"), std::string::npos) << err;
    }
    // one of each, and repeated headers nobody acts on, still pass
    RequestHead head;
    std::string err;
    EXPECT_EQ(parse_request_head("POST /v1.41/build HTTP/1.1\r\nHost: d\r\nContent-Type: "
                                 "application/x-tar\r\nX-Meta: 1\r\nX-Meta: 2\r\n\r\n",
                                 head, err),
              Parse::done)
        << err;
}

}  // namespace

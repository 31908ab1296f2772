#pragma once
// Strict HTTP/1.1 message heads and chunked framing for the policy proxy. Requests come
// from untrusted clients and are parsed strictly (anything two parsers could read
// differently is an error); responses come from dockerd and are parsed for framing only.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cordon::http {

struct Header {
    std::string name;
    std::string value;
};

enum class Parse { incomplete, done, error };

struct Limits {
    std::size_t max_head = 64 * 1024;
    std::size_t max_headers = 100;
};

struct RequestHead {
    std::string method;
    std::string target;
    int minor = 1;  // HTTP/1.<minor>
    std::vector<Header> headers;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = true;
    bool close = false;
    bool upgrade = false;  // "Connection: upgrade" and an Upgrade header
    std::string upgrade_protocol;
    bool expect_continue = false;
    std::string content_type;
    std::size_t size = 0;  // bytes of the head including the blank line
    int error_status = 400;

    bool has_body() const { return chunked || (content_length && *content_length > 0); }
    const std::string* find(std::string_view name) const;
};

// Parses a request head at the start of `buf`. On error sets `err` (for a person) and
// out.error_status (400, 417, 431, 501, 505).
Parse parse_request_head(std::string_view buf, RequestHead& out, std::string& err,
                         const Limits& limits = {});

struct ResponseHead {
    int status = 0;
    int minor = 1;
    std::vector<Header> headers;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    bool close = false;
    std::size_t size = 0;
};

Parse parse_response_head(std::string_view buf, ResponseHead& out, std::string& err,
                          const Limits& limits = {});

// True for the head dockerd writes before it hijacks a connection for a client that sent
// no Upgrade (moby 20.10 postContainersAttach, postContainerExecStart): status 200, a
// Content-Type whose media type is application/vnd.docker.raw-stream (or
// .multiplexed-stream, API 1.42+), and neither Content-Length nor Transfer-Encoding.
bool is_hijack_head(const ResponseHead& head);

// Incremental chunked-body decoder (RFC 9112 section 7.1), strict: 1-16 hex digits,
// CRLF everywhere, extensions ignored, trailers refused unless allowed.
class ChunkedDecoder {
  public:
    explicit ChunkedDecoder(bool allow_trailers = false) : allow_trailers_(allow_trailers) {}
    // Consumes bytes from `in` (stopping at the end of the body); appends the payload
    // spans (pointing into `in`) to `data`. Returns the bytes consumed.
    std::size_t feed(std::string_view in, std::vector<std::string_view>& data);
    bool done() const { return state_ == State::done; }
    bool failed() const { return state_ == State::failed; }
    const std::string& error() const { return error_; }
    std::uint64_t total() const { return total_; }
    // Data bytes of the current chunk still to come (0 when not inside chunk data).
    std::uint64_t data_remaining() const { return state_ == State::data ? remaining_ : 0; }
    // The caller moved `n` (at most data_remaining()) data bytes itself, e.g. with
    // splice(2): account for them as if they had been fed.
    void skip_data(std::uint64_t n);

  private:
    enum class State {
        size,
        ext,
        size_lf,
        data,
        data_cr,
        data_lf,
        trailer_start,
        trailer,
        trailer_lf,
        final_lf,
        done,
        failed
    };
    bool fail(const char* why);
    State state_ = State::size;
    bool allow_trailers_;
    int digits_ = 0;
    std::uint64_t remaining_ = 0;
    std::uint64_t total_ = 0;
    std::string error_;
};

enum class Framing { none, length, chunked };

// The head forwarded to dockerd: the request line as received, the client's headers minus
// hop-by-hop and framing ones, then our own framing and Connection headers.
std::string serialize_request_head(const RequestHead& h, Framing framing, std::uint64_t length,
                                   bool upgrade);

// A complete response with a JSON body (403 refusals, 400s, 404 lookups).
std::string json_response(int status, std::string_view reason, std::string_view body, bool close);

bool iequals(std::string_view a, std::string_view b);

// The media type Go's mime.ParseMediaType returns for a Content-Type value (what
// net/http's ParseForm/FormValue act on): the part before the first ';', through
// strings.ToLower (Unicode simple lower case: U+0130 -> 'i', U+212A KELVIN -> 'k'; an
// invalid UTF-8 byte becomes U+FFFD) and strings.TrimSpace (Unicode white space, e.g.
// U+00A0, U+0085, U+3000). Returned even where Go would also report a parameter error,
// since parsePostForm reads a url-encoded body regardless of that error.
std::string go_media_type(std::string_view content_type);

// True when Go's net/http would read form parameters from a body with this Content-Type
// (application/x-www-form-urlencoded, multipart/form-data).
bool is_go_form(std::string_view content_type);

}  // namespace cordon::http

#include "cordon/proxy/http.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <vector>

#include "cordon/proxy/go_utf8.hpp"
#include "cordon/proxy/hex.hpp"

namespace cordon::http {
namespace {

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) {
    if (s.empty())
        return false;
    for (char c : s)
        if (!is_tchar(static_cast<unsigned char>(c)))
            return false;
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string o(s);
    for (auto& c : o)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c + 32);
    return o;
}

// Splits the head into lines. strict: CRLF only. Returns incomplete/done/error and the
// lines (without terminators); `size` is the head length including the blank line.
Parse split_lines(std::string_view buf, bool strict, const Limits& limits,
                  std::vector<std::string_view>& lines, std::size_t& size, std::string& err,
                  int& status) {
    std::size_t p = 0;
    while (true) {
        auto lf = buf.find('\n', p);
        if (lf == std::string_view::npos) {
            if (buf.size() > limits.max_head) {
                err =
                    "the request head is larger than " + std::to_string(limits.max_head) + " bytes";
                status = 431;
                return Parse::error;
            }
            return Parse::incomplete;
        }
        if (lf + 1 > limits.max_head) {
            err = "the request head is larger than " + std::to_string(limits.max_head) + " bytes";
            status = 431;
            return Parse::error;
        }
        std::size_t end = lf;
        if (end > p && buf[end - 1] == '\r') {
            --end;
        } else if (strict) {
            err = "a line ends with a bare LF (CRLF is required)";
            return Parse::error;
        }
        std::string_view line = buf.substr(p, end - p);
        if (strict && line.find('\r') != std::string_view::npos) {
            err = "a bare CR inside a line";
            return Parse::error;
        }
        p = lf + 1;
        if (line.empty()) {
            if (lines.empty()) {
                err = "the message starts with an empty line";
                return Parse::error;
            }
            size = p;
            return Parse::done;
        }
        lines.push_back(line);
        if (lines.size() > limits.max_headers + 1) {
            err = "too many header fields";
            status = 431;
            return Parse::error;
        }
    }
}

bool parse_header_line(std::string_view line, bool strict, Header& h, std::string& err) {
    if (line.front() == ' ' || line.front() == '\t') {
        err = "obsolete line folding (a header line starts with whitespace)";
        return false;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        err = "a header line without ':'";
        return false;
    }
    std::string_view name = line.substr(0, colon);
    if (!is_token(name)) {
        err =
            "the header name \"" + std::string(name) + "\" is not a token (whitespace before ':'?)";
        return false;
    }
    std::string_view value = trim(line.substr(colon + 1));
    if (strict)
        for (char ch : value) {
            auto c = static_cast<unsigned char>(ch);
            if ((c < 0x20 && c != '\t') || c == 0x7F) {
                err = "a control character in the value of " + std::string(name);
                return false;
            }
        }
    h.name = std::string(name);
    h.value = std::string(value);
    return true;
}

bool parse_length(std::string_view v, std::uint64_t& out) {
    if (v.empty() || v.size() > 15)
        return false;
    out = 0;
    for (char c : v) {
        if (c < '0' || c > '9')
            return false;
        out = out * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

namespace {

// unicode.IsSpace.
bool go_is_space(char32_t r) {
    switch (r) {
        case '\t':
        case '\n':
        case '\v':
        case '\f':
        case '\r':
        case ' ':
        case 0x85:
        case 0xA0:
        case 0x1680:
        case 0x2028:
        case 0x2029:
        case 0x202F:
        case 0x205F:
        case 0x3000:
            return true;
        default:
            return r >= 0x2000 && r <= 0x200A;
    }
}

// unicode.ToLower, as far as it matters here: ASCII, and the two runes whose lower case
// is ASCII. Every other rune stays non-ASCII under ToLower, so it can never make a media
// type equal an ASCII one; it is kept as is.
char32_t go_to_lower(char32_t r) {
    if (r >= 'A' && r <= 'Z')
        return r + 32;
    if (r == 0x130)
        return 'i';
    if (r == 0x212A)
        return 'k';
    return r;
}

}  // namespace

std::string go_media_type(std::string_view content_type) {
    std::string_view base = content_type.substr(0, content_type.find(';'));
    std::vector<char32_t> runes;
    for (std::size_t i = 0, w = 0; i < base.size(); i += w)
        runes.push_back(go_to_lower(go_utf8::decode_rune(base, i, w)));
    std::size_t first = 0, last = runes.size();
    while (first < last && go_is_space(runes[first])) ++first;
    while (last > first && go_is_space(runes[last - 1])) --last;
    std::string out;
    for (std::size_t i = first; i < last; ++i) go_utf8::append_utf8(out, runes[i]);
    return out;
}

bool is_go_form(std::string_view content_type) {
    std::string mt = go_media_type(content_type);
    return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data";
}

const std::string* RequestHead::find(std::string_view name) const {
    for (const auto& h : headers)
        if (iequals(h.name, name))
            return &h.value;
    return nullptr;
}

Parse parse_request_head(std::string_view buf, RequestHead& out, std::string& err,
                         const Limits& limits) {
    std::vector<std::string_view> lines;
    out = RequestHead{};
    auto st = split_lines(buf, true, limits, lines, out.size, err, out.error_status);
    if (st != Parse::done)
        return st;
    auto fail = [&](std::string why, int status = 400) {
        err = std::move(why);
        out.error_status = status;
        return Parse::error;
    };
    // request-line = method SP request-target SP HTTP-version
    std::string_view rl = lines[0];
    auto sp1 = rl.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        rl.find(' ', sp2 + 1) != std::string_view::npos)
        return fail("the request line is not \"METHOD /path HTTP/1.1\"");
    std::string_view method = rl.substr(0, sp1), target = rl.substr(sp1 + 1, sp2 - sp1 - 1),
                     version = rl.substr(sp2 + 1);
    if (!is_token(method))
        return fail("the method is not a token");
    if (target.empty())
        return fail("an empty request target");
    for (char ch : target) {
        auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7F)
            return fail("the request target holds a character that must be percent-encoded");
    }
    if (version == "HTTP/1.1")
        out.minor = 1;
    else if (version == "HTTP/1.0")
        out.minor = 0;
    else
        return fail("only HTTP/1.0 and HTTP/1.1 are spoken here", 505);
    out.method = std::string(method);
    out.target = std::string(target);
    int n_te = 0, n_cl = 0, n_host = 0;
    // Headers the proxy or dockerd act on: Go's Header.Get reads the first of several,
    // a reader elsewhere may read the last; one of each, or the request is refused.
    static const char* const kSingle[] = {
        "content-type",      "connection", "upgrade", "expect",     "x-registry-auth",
        "x-registry-config", "te",         "trailer", "keep-alive", "proxy-connection"};
    int seen_single[std::size(kSingle)] = {};
    bool conn_close = false, conn_keep = false, conn_upgrade = false;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        Header h;
        if (!parse_header_line(lines[i], true, h, err))
            return fail(err);
        for (std::size_t k = 0; k < std::size(kSingle); ++k)
            if (iequals(h.name, kSingle[k]) && ++seen_single[k] > 1)
                return fail("more than one " + h.name +
                            " header (Go's server reads the first; send one)");
        if (iequals(h.name, "content-length")) {
            ++n_cl;
            std::uint64_t n = 0;
            if (!parse_length(h.value, n))
                return fail("Content-Length is not a plain decimal number");
            out.content_length = n;
        } else if (iequals(h.name, "transfer-encoding")) {
            ++n_te;
            if (!iequals(h.value, "chunked"))
                return fail("only \"Transfer-Encoding: chunked\" is accepted", 501);
            out.chunked = true;
        } else if (iequals(h.name, "host")) {
            ++n_host;
        } else if (iequals(h.name, "connection")) {
            std::string v = lower(h.value);
            std::size_t p = 0;
            while (p <= v.size()) {
                auto c = v.find(',', p);
                std::string tok(trim(std::string_view(v).substr(
                    p, c == std::string::npos ? std::string::npos : c - p)));
                if (tok == "close")
                    conn_close = true;
                if (tok == "keep-alive")
                    conn_keep = true;
                if (tok == "upgrade")
                    conn_upgrade = true;
                if (c == std::string::npos)
                    break;
                p = c + 1;
            }
        } else if (iequals(h.name, "upgrade")) {
            out.upgrade_protocol = h.value;
        } else if (iequals(h.name, "expect")) {
            if (!iequals(h.value, "100-continue"))
                return fail("unsupported Expect", 417);
            out.expect_continue = true;
        } else if (iequals(h.name, "content-type")) {
            out.content_type = h.value;
        }
        out.headers.push_back(std::move(h));
    }
    if (n_cl > 1)
        return fail("more than one Content-Length header");
    if (n_te > 1)
        return fail("more than one Transfer-Encoding header");
    if (n_cl && n_te)
        return fail("both Content-Length and Transfer-Encoding (request smuggling)");
    if (out.chunked && out.minor == 0)
        return fail("Transfer-Encoding in an HTTP/1.0 request");
    if (n_host > 1)
        return fail("more than one Host header");
    if (n_host == 0 && out.minor == 1)
        return fail("an HTTP/1.1 request without Host");
    out.close = conn_close || (out.minor == 0 && !conn_keep);
    out.keep_alive = !out.close;
    out.upgrade = conn_upgrade && !out.upgrade_protocol.empty();
    return Parse::done;
}

Parse parse_response_head(std::string_view buf, ResponseHead& out, std::string& err,
                          const Limits& limits) {
    std::vector<std::string_view> lines;
    out = ResponseHead{};
    int status = 0;
    auto st = split_lines(buf, false, limits, lines, out.size, err, status);
    if (st != Parse::done)
        return st;
    std::string_view sl = lines[0];
    if (sl.size() < 12 || sl.substr(0, 7) != "HTTP/1." || (sl[7] != '0' && sl[7] != '1') ||
        sl[8] != ' ') {
        err = "dockerd sent a malformed status line";
        return Parse::error;
    }
    out.minor = sl[7] - '0';
    out.status = 0;
    for (int i = 9; i < 12; ++i) {
        if (sl[static_cast<std::size_t>(i)] < '0' || sl[static_cast<std::size_t>(i)] > '9') {
            err = "dockerd sent a malformed status code";
            return Parse::error;
        }
        out.status = out.status * 10 + (sl[static_cast<std::size_t>(i)] - '0');
    }
    bool te = false;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        Header h;
        if (!parse_header_line(lines[i], false, h, err))
            return Parse::error;
        if (iequals(h.name, "content-length")) {
            std::uint64_t n = 0;
            if (!parse_length(h.value, n) || (out.content_length && *out.content_length != n)) {
                err = "dockerd sent a bad Content-Length";
                return Parse::error;
            }
            out.content_length = n;
        } else if (iequals(h.name, "transfer-encoding")) {
            te = true;
            std::string v = lower(h.value);
            out.chunked = v.size() >= 7 && v.compare(v.size() - 7, 7, "chunked") == 0;
        } else if (iequals(h.name, "connection")) {
            if (lower(h.value).find("close") != std::string::npos)
                out.close = true;
        }
        out.headers.push_back(std::move(h));
    }
    if (te && out.content_length) {
        err = "dockerd sent both Content-Length and Transfer-Encoding";
        return Parse::error;
    }
    if (te && !out.chunked)
        out.close = true;  // read until close
    if (out.minor == 0)
        out.close = true;
    return Parse::done;
}

bool is_hijack_head(const ResponseHead& head) {
    if (head.status != 200 || head.content_length || head.chunked)
        return false;
    bool raw_stream = false;
    for (const auto& f : head.headers) {
        if (iequals(f.name, "transfer-encoding") || iequals(f.name, "content-length"))
            return false;
        if (iequals(f.name, "content-type")) {
            if (raw_stream)
                return false;  // two media types: not what dockerd writes
            std::string t = go_media_type(f.value);
            raw_stream = t == "application/vnd.docker.raw-stream" ||
                         t == "application/vnd.docker.multiplexed-stream";
            if (!raw_stream)
                return false;
        }
    }
    return raw_stream;
}

bool ChunkedDecoder::fail(const char* why) {
    state_ = State::failed;
    error_ = why;
    return false;
}

void ChunkedDecoder::skip_data(std::uint64_t n) {
    n = std::min(n, data_remaining());
    remaining_ -= n;
    total_ += n;
    if (state_ == State::data && remaining_ == 0)
        state_ = State::data_cr;
}

std::size_t ChunkedDecoder::feed(std::string_view in, std::vector<std::string_view>& data) {
    std::size_t i = 0;
    while (i < in.size() && state_ != State::done && state_ != State::failed) {
        char c = in[i];
        switch (state_) {
            case State::size: {
                int h = policy::hex_digit_value(c);
                if (h >= 0) {
                    if (++digits_ > 16)
                        return fail("a chunk size with more than 16 hex digits"), i;
                    remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(h);
                } else if (digits_ == 0) {
                    return fail("a chunk size must start with a hex digit"), i;
                } else if (c == ';') {
                    state_ = State::ext;
                } else if (c == '\r') {
                    state_ = State::size_lf;
                } else {
                    return fail("an invalid character after a chunk size"), i;
                }
                ++i;
                break;
            }
            case State::ext:
                if (c == '\r')
                    state_ = State::size_lf;
                else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t') ||
                         c == 0x7F)
                    return fail("an invalid character in a chunk extension"), i;
                ++i;
                break;
            case State::size_lf:
                if (c != '\n')
                    return fail("a chunk size line must end with CRLF"), i;
                ++i;
                state_ = remaining_ == 0 ? State::trailer_start : State::data;
                break;
            case State::data: {
                std::size_t n =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
                data.push_back(in.substr(i, n));
                i += n;
                remaining_ -= n;
                total_ += n;
                if (remaining_ == 0)
                    state_ = State::data_cr;
                break;
            }
            case State::data_cr:
                if (c != '\r')
                    return fail("chunk data must be followed by CRLF"), i;
                ++i;
                state_ = State::data_lf;
                break;
            case State::data_lf:
                if (c != '\n')
                    return fail("chunk data must be followed by CRLF"), i;
                ++i;
                digits_ = 0;
                state_ = State::size;
                break;
            case State::trailer_start:
                if (c == '\r') {
                    state_ = State::final_lf;
                    ++i;
                } else if (!allow_trailers_) {
                    return fail("trailer fields are not accepted"), i;
                } else {
                    state_ = State::trailer;
                }
                break;
            case State::trailer:
                if (c == '\r')
                    state_ = State::trailer_lf;
                ++i;
                break;
            case State::trailer_lf:
                if (c != '\n')
                    return fail("a trailer line must end with CRLF"), i;
                ++i;
                state_ = State::trailer_start;
                break;
            case State::final_lf:
                if (c != '\n')
                    return fail("the chunked body must end with CRLF"), i;
                ++i;
                state_ = State::done;
                break;
            case State::done:
            case State::failed:
                break;
        }
    }
    return i;
}

std::string serialize_request_head(const RequestHead& h, Framing framing, std::uint64_t length,
                                   bool upgrade) {
    std::string out;
    out.reserve(256 + h.target.size());
    out += h.method;
    out += ' ';
    out += h.target;
    out += h.minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n";
    for (const auto& f : h.headers) {
        const std::string& n = f.name;
        if (iequals(n, "content-length") || iequals(n, "transfer-encoding") ||
            iequals(n, "connection") || iequals(n, "keep-alive") ||
            iequals(n, "proxy-connection") || iequals(n, "upgrade") || iequals(n, "expect") ||
            iequals(n, "te") || iequals(n, "trailer"))
            continue;
        out += n;
        out += ": ";
        out += f.value;
        out += "\r\n";
    }
    if (framing == Framing::length)
        out += fmt::format("Content-Length: {}\r\n", length);
    if (framing == Framing::chunked)
        out += "Transfer-Encoding: chunked\r\n";
    if (upgrade) {
        out += "Connection: Upgrade\r\nUpgrade: ";
        out += h.upgrade_protocol;
        out += "\r\n";
    } else if (h.close) {
        out += "Connection: close\r\n";
    } else if (h.minor == 0) {
        out += "Connection: keep-alive\r\n";
    }
    out += "\r\n";
    return out;
}

std::string json_response(int status, std::string_view reason, std::string_view body, bool close) {
    return fmt::format(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n{}",
        status, reason, body.size(), close ? "Connection: close\r\n" : "", body);
}

}  // namespace cordon::http

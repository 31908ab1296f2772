#pragma once
// Newline-delimited JSON RPC: pure codec (no I/O), driven by the fuzzer and used by
// cordon::rpc::Server and BlockingClient. One message per line (UTF-8 JSON object, no raw
// newline inside; JSON escapes newlines in strings):
//   request       {"id":N,"method":"info","params":{...}}          (N: integer >= 0)
//   response      {"id":N,"result":...}
//   error reply   {"id":N|null,"error":{"code":"...","message":"...","hint":"..."}}
//   notification  {"method":"progress","params":{...}}             (no id)
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "cordon/error.hpp"

namespace cordon::rpc {

using json = nlohmann::json;

inline constexpr std::size_t kMaxLine = 1u << 20;  // 1 MiB, newline excluded

// Error codes used by the library (handlers may use their own codes too).
namespace code {
inline constexpr const char* parse_error = "parse_error";          // not JSON
inline constexpr const char* invalid_request = "invalid_request";  // JSON, not a message
inline constexpr const char* unknown_method = "unknown_method";
inline constexpr const char* invalid_params = "invalid_params";
inline constexpr const char* line_too_long = "line_too_long";
inline constexpr const char* failed = "failed";      // a handler threw cordon::Error
inline constexpr const char* internal = "internal";  // a handler threw something else
}  // namespace code

struct RemoteError {
    std::string code;
    std::string message;
    std::string hint;
};

// Thrown by BlockingClient for an error reply, and by handlers that want a specific code.
// failure() is the message, subject() the method, hint() the remote hint.
class CallError : public cordon::Error {
  public:
    CallError(std::string code, std::string message, std::string method, std::string hint = {});
    const std::string& code() const noexcept { return code_; }
    RemoteError remote() const { return {code_, failure(), hint()}; }

  private:
    std::string code_;
};

struct Message {
    enum class Kind { request, response, notification };
    Kind kind = Kind::notification;
    std::optional<std::uint64_t> id;   // requests and responses (null id on some error replies)
    std::string method;                // requests and notifications
    json params = json::object();      // requests and notifications (object or array)
    json result;                       // successful responses
    std::optional<RemoteError> error;  // error responses
};

// Splits a byte stream into lines. A line longer than max_line is an error (the caller
// answers line_too_long and closes the connection: the stream cannot be resynchronised
// safely). A trailing '\r' is stripped.
class LineDecoder {
  public:
    enum class Status { line, need_more, too_long };
    explicit LineDecoder(std::size_t max_line = kMaxLine) : max_line_(max_line) {}
    void feed(std::string_view bytes);
    Status next(std::string& line);
    std::size_t buffered() const noexcept { return buf_.size() - pos_; }

  private:
    std::string buf_;
    std::size_t pos_ = 0;
    std::size_t scanned_ = 0;  // bytes after pos_ already known to hold no newline
    std::size_t max_line_;
    bool failed_ = false;
};

// Parses one line (without the newline). Never throws: on failure returns false and fills
// `error` with the code (parse_error / invalid_request), a precise message, and the
// request id when it could be read (so the error reply can carry it).
bool decode_message(std::string_view line, Message& out, RemoteError& error,
                    std::optional<std::uint64_t>& error_id);

// Encoders: one line each, newline included.
std::string encode_request(std::uint64_t id, std::string_view method, const json& params);
std::string encode_result(std::optional<std::uint64_t> id, const json& result);
std::string encode_error(std::optional<std::uint64_t> id, const RemoteError& error);
std::string encode_notification(std::string_view method, const json& params);

}  // namespace cordon::rpc

#include "cordon/rpc/codec.hpp"

#include <fmt/format.h>

namespace cordon::rpc {

CallError::CallError(std::string code, std::string message, std::string method, std::string hint)
    : cordon::Error(std::move(message), std::move(method), std::move(hint)),
      code_(std::move(code)) {}

void LineDecoder::feed(std::string_view bytes) {
    if (failed_)
        return;
    if (pos_ > 0 && (pos_ == buf_.size() || pos_ >= 64 * 1024)) {
        buf_.erase(0, pos_);
        scanned_ = scanned_ >= pos_ ? scanned_ - pos_ : 0;
        pos_ = 0;
    }
    buf_.append(bytes);
}

LineDecoder::Status LineDecoder::next(std::string& line) {
    if (failed_)
        return Status::too_long;
    const std::size_t from = pos_ + scanned_;
    const std::size_t nl = buf_.find('\n', from);
    if (nl == std::string::npos) {
        scanned_ = buf_.size() - pos_;
        if (scanned_ > max_line_ + 1) {
            failed_ = true;
            return Status::too_long;
        }
        return Status::need_more;
    }
    std::size_t len = nl - pos_;
    if (len > max_line_ + 1 || (len == max_line_ + 1 && buf_[nl - 1] != '\r')) {
        failed_ = true;
        return Status::too_long;
    }
    if (len > 0 && buf_[pos_ + len - 1] == '\r')
        --len;
    line.assign(buf_, pos_, len);
    pos_ = nl + 1;
    scanned_ = 0;
    return Status::line;
}

namespace {

bool read_id(const json& j, std::optional<std::uint64_t>& id, std::string& why) {
    auto it = j.find("id");
    if (it == j.end() || it->is_null())
        return true;
    if (!it->is_number_integer() ||
        (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0)) {
        why = "\"id\" must be a non-negative integer";
        return false;
    }
    id = it->get<std::uint64_t>();
    return true;
}

// nlohmann::json recurses when it prints and destroys values: refuse absurd nesting
// before parsing (a line of a million '[' must not exhaust the stack).
constexpr int kMaxDepth = 64;
bool nesting_ok(std::string_view line) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (char c : line) {
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"')
            in_string = true;
        else if (c == '[' || c == '{') {
            if (++depth > kMaxDepth)
                return false;
        } else if (c == ']' || c == '}')
            --depth;
    }
    return true;
}

std::string text_of(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string())
        return {};
    return it->get<std::string>();
}

}  // namespace

bool decode_message(std::string_view line, Message& out, RemoteError& error,
                    std::optional<std::uint64_t>& error_id) {
    error_id.reset();
    if (!nesting_ok(line)) {
        error = {code::invalid_request,
                 fmt::format("the message nests deeper than {} levels", kMaxDepth),
                 {}};
        return false;
    }
    json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
        error = {code::parse_error, "the line is not valid JSON", "send one JSON object per line"};
        return false;
    }
    if (!j.is_object()) {
        error = {code::invalid_request,
                 fmt::format("a message must be a JSON object, got {}", j.type_name()),
                 {}};
        return false;
    }
    std::string why;
    std::optional<std::uint64_t> id;
    if (!read_id(j, id, why)) {
        error = {code::invalid_request, why, {}};
        return false;
    }
    error_id = id;
    out = Message{};
    out.id = id;
    const bool has_method = j.contains("method");
    const bool has_result = j.contains("result");
    const bool has_error = j.contains("error");
    if (has_method) {
        if (has_result || has_error) {
            error = {
                code::invalid_request, "a message cannot have both \"method\" and a reply", {}};
            return false;
        }
        const auto& m = j["method"];
        if (!m.is_string() || m.get_ref<const std::string&>().empty()) {
            error = {code::invalid_request, "\"method\" must be a non-empty string", {}};
            return false;
        }
        out.method = m.get<std::string>();
        if (auto p = j.find("params"); p != j.end() && !p->is_null()) {
            if (!p->is_object() && !p->is_array()) {
                error = {code::invalid_request, "\"params\" must be an object or an array", {}};
                return false;
            }
            out.params = *p;
        }
        out.kind = id ? Message::Kind::request : Message::Kind::notification;
        return true;
    }
    if (has_result == has_error) {
        error = {code::invalid_request,
                 has_result ? "a reply cannot have both \"result\" and \"error\""
                            : "a message needs \"method\", \"result\" or \"error\"",
                 {}};
        return false;
    }
    out.kind = Message::Kind::response;
    if (has_result) {
        if (!id) {
            error = {code::invalid_request, "a result needs an \"id\"", {}};
            return false;
        }
        out.result = j["result"];
        return true;
    }
    const auto& e = j["error"];
    if (!e.is_object() || !e.contains("code") || !e["code"].is_string()) {
        error = {code::invalid_request, "\"error\" must be an object with a string \"code\"", {}};
        return false;
    }
    out.error =
        RemoteError{e["code"].get<std::string>(), text_of(e, "message"), text_of(e, "hint")};
    return true;
}

namespace {
std::string line_of(const json& j) {
    // Invalid UTF-8 in strings is replaced instead of throwing.
    std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
    s.push_back('\n');
    return s;
}
json id_json(std::optional<std::uint64_t> id) {
    return id ? json(*id) : json(nullptr);
}
}  // namespace

std::string encode_request(std::uint64_t id, std::string_view method, const json& params) {
    return line_of(json{{"id", id}, {"method", method}, {"params", params}});
}

std::string encode_result(std::optional<std::uint64_t> id, const json& result) {
    return line_of(json{{"id", id_json(id)}, {"result", result}});
}

std::string encode_error(std::optional<std::uint64_t> id, const RemoteError& error) {
    json e{{"code", error.code}, {"message", error.message}};
    if (!error.hint.empty())
        e["hint"] = error.hint;
    return line_of(json{{"id", id_json(id)}, {"error", e}});
}

std::string encode_notification(std::string_view method, const json& params) {
    return line_of(json{{"method", method}, {"params", params}});
}

}  // namespace cordon::rpc

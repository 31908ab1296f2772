#include "cordon/shell/protocol.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "cordon/error.hpp"

namespace cordon::shell {

bool known_type(std::uint8_t t) {
    switch (static_cast<MsgType>(t)) {
        case MsgType::start:
        case MsgType::stdin_data:
        case MsgType::stdin_eof:
        case MsgType::resize:
        case MsgType::stdout_data:
        case MsgType::stderr_data:
        case MsgType::exit:
        case MsgType::error:
            return true;
    }
    return false;
}

std::string encode(MsgType type, std::string_view payload) {
    std::string out;
    out.reserve(kHeaderSize + payload.size());
    out.push_back(static_cast<char>(type));
    const auto n = static_cast<std::uint32_t>(payload.size());
    out.push_back(static_cast<char>((n >> 24) & 0xff));
    out.push_back(static_cast<char>((n >> 16) & 0xff));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
    out.append(payload);
    return out;
}

std::string encode_resize(std::uint16_t rows, std::uint16_t cols) {
    const char p[4] = {static_cast<char>(rows >> 8), static_cast<char>(rows & 0xff),
                       static_cast<char>(cols >> 8), static_cast<char>(cols & 0xff)};
    return encode(MsgType::resize, std::string_view(p, 4));
}

bool decode_resize(std::string_view payload, std::uint16_t& rows, std::uint16_t& cols) {
    if (payload.size() != 4)
        return false;
    auto b = [&](std::size_t i) {
        return static_cast<std::uint16_t>(static_cast<unsigned char>(payload[i]));
    };
    rows = static_cast<std::uint16_t>((b(0) << 8) | b(1));
    cols = static_cast<std::uint16_t>((b(2) << 8) | b(3));
    return true;
}

std::string encode_start(const StartRequest& req) {
    nlohmann::json j = {{"tty", req.tty}};
    // An unknown size (0, as some terminals report) is left to the guest's default.
    if (req.rows > 0)
        j["rows"] = std::min(req.rows, kMaxTerminalSide);
    if (req.cols > 0)
        j["cols"] = std::min(req.cols, kMaxTerminalSide);
    if (!req.term.empty())
        j["term"] = req.term;
    if (!req.argv.empty())
        j["argv"] = req.argv;
    return j.dump();
}

namespace {

[[noreturn]] void bad_start(const std::string& what) {
    throw Error("invalid shell START message: " + what, "the shell service",
                "update vmctl and the VM image together (they speak the same protocol)");
}

std::uint16_t terminal_side(const nlohmann::json& j, const char* key, std::uint16_t fallback) {
    const auto it = j.find(key);
    if (it == j.end())
        return fallback;
    if (!it->is_number_integer())
        bad_start(fmt::format("\"{}\" must be an integer", key));
    // Integers above INT64_MAX parse as unsigned; compare without converting to a narrower type.
    const bool in_range =
        it->is_number_unsigned()
            ? it->get<std::uint64_t>() <= kMaxTerminalSide && it->get<std::uint64_t>() >= 1
            : it->get<std::int64_t>() >= 1 && it->get<std::int64_t>() <= kMaxTerminalSide;
    if (!in_range)
        bad_start(fmt::format("\"{}\" must be from 1 to {}", key, kMaxTerminalSide));
    return static_cast<std::uint16_t>(it->get<std::int64_t>());
}

}  // namespace

StartRequest parse_start(std::string_view payload) {
    const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        bad_start("it is not a JSON object");
    StartRequest req;
    if (const auto it = j.find("tty"); it != j.end()) {
        if (!it->is_boolean())
            bad_start("\"tty\" must be true or false");
        req.tty = it->get<bool>();
    }
    req.rows = terminal_side(j, "rows", req.rows);
    req.cols = terminal_side(j, "cols", req.cols);
    if (const auto it = j.find("term"); it != j.end()) {
        if (!it->is_string())
            bad_start("\"term\" must be a string");
        req.term = it->get<std::string>();
        if (req.term.size() > kMaxTermName)
            bad_start(fmt::format("\"term\" is longer than {} bytes", kMaxTermName));
        for (const unsigned char c : req.term) {
            if (c < 0x20 || c == 0x7f || c == '=')
                bad_start("\"term\" holds '=' or a control character");
        }
    }
    if (const auto it = j.find("argv"); it != j.end()) {
        if (!it->is_array())
            bad_start("\"argv\" must be an array of strings");
        for (const auto& a : *it) {
            if (!a.is_string())
                bad_start("\"argv\" must be an array of strings");
            std::string arg = a.get<std::string>();
            // execve() would silently cut the argument at the first NUL.
            if (arg.find('\0') != std::string::npos)
                bad_start("an \"argv\" entry holds a NUL character");
            req.argv.push_back(std::move(arg));
        }
        if (!req.argv.empty() && req.argv.front().empty())
            bad_start("the program (\"argv\"[0]) is empty");
    }
    return req;
}

std::string encode_exit(const ExitReport& report) {
    return nlohmann::json{{"exit_code", report.exit_code}, {"signal", report.signal}}.dump();
}

ExitReport parse_exit(std::string_view payload) {
    auto bad = [](const std::string& what) -> ExitReport {
        throw Error("invalid shell EXIT message: " + what, "the shell service",
                    "update vmctl and the VM image together (they speak the same protocol)");
    };
    const nlohmann::json j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return bad("it is not a JSON object");
    auto small_int = [&](const char* key, std::int64_t max, bool required) -> int {
        const auto it = j.find(key);
        if (it == j.end()) {
            if (required)
                bad(fmt::format("\"{}\" is missing", key));
            return 0;
        }
        if (!it->is_number_integer() ||
            (it->is_number_unsigned() &&
             it->get<std::uint64_t>() > static_cast<std::uint64_t>(max)))
            bad(fmt::format("\"{}\" must be an integer from 0 to {}", key, max));
        const std::int64_t v = it->get<std::int64_t>();
        if (v < 0 || v > max)
            bad(fmt::format("\"{}\" must be an integer from 0 to {}", key, max));
        return static_cast<int>(v);
    };
    ExitReport r;
    r.exit_code = small_int("exit_code", 255, true);
    r.signal = small_int("signal", 127, false);
    return r;
}

void Decoder::feed(std::string_view bytes) {
    if (!error_.empty())
        return;
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
        buf_.erase(0, pos_);
        pos_ = 0;
    }
    buf_.append(bytes);
}

std::optional<Message> Decoder::next() {
    if (!error_.empty() || buf_.size() - pos_ < kHeaderSize)
        return std::nullopt;
    const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
    if (!known_type(h[0])) {
        error_ = fmt::format("unknown shell message type 0x{:02x}", h[0]);
        return std::nullopt;
    }
    const std::uint32_t n = (std::uint32_t{h[1]} << 24) | (std::uint32_t{h[2]} << 16) |
                            (std::uint32_t{h[3]} << 8) | std::uint32_t{h[4]};
    if (n > kMaxPayload) {
        error_ = fmt::format("shell message of {} bytes (limit {})", n, kMaxPayload);
        return std::nullopt;
    }
    if (buf_.size() - pos_ < kHeaderSize + n)
        return std::nullopt;
    Message m{static_cast<MsgType>(h[0]), buf_.substr(pos_ + kHeaderSize, n)};
    pos_ += kHeaderSize + n;
    if (pos_ == buf_.size()) {
        buf_.clear();
        pos_ = 0;
    }
    return m;
}

}  // namespace cordon::shell

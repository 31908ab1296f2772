#pragma once
// Published UDP ports: how datagrams travel over a channel stream ("port:udp:<port>",
// docs/PROTOCOL.md). A channel stream is a byte stream, so each datagram is framed as a
// u16 big-endian length followed by that many payload bytes (0 is a valid, empty
// datagram). A length above kMaxUdpPayload (65507, the most an IPv4 UDP socket carries)
// is a protocol error: the receiver resets the stream with the decoder's reason.
//
// Also the host's flow table (one entry per client address, idle expiry, a cap). Pure
// logic, no I/O.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cordon::ports {

inline constexpr std::size_t kMaxUdpPayload = 65507;
inline constexpr std::size_t kUdpFrameHeader = 2;

// Appends one framed datagram to `out`. Throws cordon::Error when the payload is larger
// than kMaxUdpPayload (a socket cannot hand us one; the caller checks anyway).
void append_datagram(std::string& out, std::string_view payload);

// Splits a byte stream back into datagrams, across arbitrary chunk boundaries.
class DatagramDecoder {
  public:
    enum class Status { datagram, need_more, error };

    explicit DatagramDecoder(std::size_t max_payload = kMaxUdpPayload);

    void feed(std::string_view bytes);
    // datagram: `out` holds the next payload. need_more: nothing complete yet.
    // error: the stream is corrupt (error() says why); every later call returns error.
    Status next(std::string& out);

    const std::string& error() const { return error_; }
    // Bytes fed but not yet returned as a datagram.
    std::size_t buffered() const { return buf_.size() - pos_; }

  private:
    std::size_t max_;
    std::string buf_;
    std::size_t pos_ = 0;
    std::string error_;
};

// Flows of one published UDP port on the host, keyed by the client's address. Each flow
// remembers when it last carried a datagram (either way); expire() removes the ones idle
// for `idle`. At most `cap` flows: add() refuses a new key beyond that.
template <typename Key, typename Value>
class FlowTable {
  public:
    using Clock = std::chrono::steady_clock;

    FlowTable(std::size_t cap, Clock::duration idle) : cap_(cap), idle_(idle) {}

    std::size_t size() const { return flows_.size(); }
    std::size_t cap() const { return cap_; }
    Clock::duration idle() const { return idle_; }

    // The flow for `key`, marked active at `now`; nullptr when there is none.
    Value* find(const Key& key, Clock::time_point now) {
        auto it = flows_.find(key);
        if (it == flows_.end())
            return nullptr;
        it->second.last = now;
        return &it->second.value;
    }
    // Marks a flow active (a reply went out on it).
    void touch(const Key& key, Clock::time_point now) {
        auto it = flows_.find(key);
        if (it != flows_.end())
            it->second.last = now;
    }
    // Adds a flow; nullptr when the table is full (or the key exists: use find()).
    Value* add(const Key& key, Value value, Clock::time_point now) {
        if (flows_.size() >= cap_ || flows_.count(key))
            return nullptr;
        return &flows_.emplace(key, Entry{std::move(value), now}).first->second.value;
    }
    std::optional<Value> erase(const Key& key) {
        auto it = flows_.find(key);
        if (it == flows_.end())
            return std::nullopt;
        Value v = std::move(it->second.value);
        flows_.erase(it);
        return v;
    }
    // Removes and returns every flow idle for `idle` or longer at `now`.
    std::vector<std::pair<Key, Value>> expire(Clock::time_point now) {
        std::vector<std::pair<Key, Value>> out;
        for (auto it = flows_.begin(); it != flows_.end();) {
            if (now - it->second.last >= idle_) {
                out.emplace_back(it->first, std::move(it->second.value));
                it = flows_.erase(it);
            } else {
                ++it;
            }
        }
        return out;
    }
    // Removes everything.
    std::vector<std::pair<Key, Value>> clear() {
        std::vector<std::pair<Key, Value>> out;
        for (auto& [k, e] : flows_) out.emplace_back(k, std::move(e.value));
        flows_.clear();
        return out;
    }
    template <typename F>
    void for_each(F f) {
        for (auto& [k, e] : flows_) f(k, e.value);
    }

  private:
    struct Entry {
        Value value;
        Clock::time_point last;
    };
    std::size_t cap_;
    Clock::duration idle_;
    std::map<Key, Entry> flows_;
};

}  // namespace cordon::ports

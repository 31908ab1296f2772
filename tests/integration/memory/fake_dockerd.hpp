#pragma once
// A small HTTP/1.1 server on a unix socket that answers the load's endpoints the way
// dockerd 20.10 does (framing, status, kept-alive connections, chunked streams): _ping,
// containers/json, containers/{id}/json, containers/{id}/logs?follow=1 and events (a chunk
// every 100 ms until the client goes). For the memory test only: what is measured is
// the agents in front of it, not this server. One io_context on its own thread.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace cordon::testing {

class FakeDockerd {
  public:
    explicit FakeDockerd(std::string path);
    ~FakeDockerd();
    FakeDockerd(const FakeDockerd&) = delete;
    FakeDockerd& operator=(const FakeDockerd&) = delete;

    std::uint64_t connections() const;
    std::uint64_t requests() const;
    int open_connections() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace cordon::testing

#pragma once
// A stand-in for dockerd on a unix socket (plain threads, blocking I/O), written for the
// proxy's integration tests: it records what reached it and can stream, hold back and
// upgrade the way dockerd does. The e2e suite later runs the same scenarios against the
// real dockerd in the VM (see tests/integration/proxy/README in proxy_test.cpp).
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cordon::testing {

struct Received {
    std::string method;
    std::string target;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
};

class StubDockerd {
  public:
    explicit StubDockerd(std::string path);
    ~StubDockerd();
    StubDockerd(const StubDockerd&) = delete;
    StubDockerd& operator=(const StubDockerd&) = delete;

    std::vector<Received> received();
    bool saw(const std::string& path_part);
    // /logs responses send `stream_first` bytes, then wait for release().
    std::size_t stream_first = 4 << 20;
    void release();
    std::atomic<std::uint64_t> upload_bytes{0};
    std::atomic<bool> upload_done{false};
    // Bytes that reached a "fakehijack" answer (a raw-stream 200 on a non-hijack route).
    std::string stray_bytes() {
        std::lock_guard lk(mu_);
        return stray_bytes_;
    }

  private:
    void serve(int fd);
    void serve_connection(int fd);
    std::string path_;
    int listen_fd_ = -1;
    std::thread accept_thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool released_ = false;
    std::vector<Received> received_;
    std::string stray_bytes_;
    std::vector<std::thread> workers_;
    std::vector<int> conns_;
    bool stopping_ = false;
};

}  // namespace cordon::testing

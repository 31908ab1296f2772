#include "memory_stats.hpp"

#include <malloc.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cordon::agent {

nlohmann::json memory_stats() {
    nlohmann::json j;
    long rss = -1;
    std::ifstream st("/proc/self/status");
    for (std::string line; std::getline(st, line);)
        if (line.rfind("VmRSS:", 0) == 0)
            rss = std::stol(line.substr(6));
    j["rss_kib"] = rss;
    std::error_code ec;
    long fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++fds;
    j["fds"] = ec ? -1 : fds - 1;  // less the iterator's own descriptor
    const struct mallinfo2 mi = ::mallinfo2();
    j["heap_in_use"] = mi.uordblks + mi.hblkhd;
    j["heap_arena"] = mi.arena;
    j["heap_free"] = mi.fordblks;
    j["heap_mmapped"] = mi.hblkhd;
    return j;
}

void register_memory_methods(rpc::Server& server) {
    server.register_method("memory",
                           [](const nlohmann::json&, rpc::Call&) { return memory_stats(); });
}

}  // namespace cordon::agent

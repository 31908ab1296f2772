#pragma once
// The "memory" RPC: the agent's own memory and descriptors (issue 9: no growth under
// load). {"rss_kib", "fds", "heap_in_use", "heap_arena", "heap_free", "heap_mmapped"}:
// RSS and the descriptor count from /proc/self, the heap figures from glibc's
// mallinfo2() (bytes: allocated, the main arena's size, free bytes kept in the arenas,
// bytes in mmapped blocks). heap_in_use counts what the program holds, whatever the
// allocator keeps cached, so a leak shows in it exactly.
#include <nlohmann/json.hpp>

#include "cordon/rpc/rpc.hpp"

namespace cordon::agent {

nlohmann::json memory_stats();
void register_memory_methods(rpc::Server& server);

}  // namespace cordon::agent

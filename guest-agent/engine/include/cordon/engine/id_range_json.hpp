#pragma once
// How an ID range is written in RPC replies and in the isolation switch journal.
#include <nlohmann/json.hpp>

#include "cordon/engine/subid.hpp"

namespace cordon::engine {

inline nlohmann::json range_json(const IdRange& r) {
    return {{"start", r.start}, {"count", r.count}};
}

}  // namespace cordon::engine

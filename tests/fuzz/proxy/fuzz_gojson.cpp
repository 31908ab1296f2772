// The Go-JSON reader: no crash, bounded depth, and what it reads can be written back.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cordon/proxy/gojson.hpp"

namespace {
void walk(const cordon::gojson::Value& v) {
    using cordon::gojson::Type;
    if (v.end < v.begin)
        std::abort();
    if (v.type == Type::string) {
        auto again = cordon::gojson::parse(cordon::gojson::quote(v.text));
        if (again.text != v.text)
            std::abort();
    }
    for (const auto& i : v.items) walk(i);
    for (const auto& [k, m] : v.members) {
        if (!cordon::gojson::key_matches_field(k, k))
            std::abort();
        (void)cordon::gojson::lookup(v, k);
        walk(m);
    }
    (void)cordon::gojson::is_zero(v);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    try {
        auto v = cordon::gojson::parse(in);
        walk(v);
        for (const char* f : {"HostConfig", "Privileged", "Binds", "NetworkMode", "KernelMemory"})
            (void)cordon::gojson::lookup(v, f);
    } catch (const cordon::gojson::ParseError&) {
    }
    return 0;
}

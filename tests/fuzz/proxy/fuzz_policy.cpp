// The policy on request bodies: the first byte picks the endpoint, the rest is the body.
// Checks: no crash, and a rewritten body is valid JSON that passes the policy again.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "cordon/proxy/gojson.hpp"
#include "cordon/proxy/policy.hpp"

namespace {
// Volume options for a looked-up volume, read from the input itself: the last
// "DriverOpts" or "Options" object it holds (so the fuzzer drives stored options too).
std::vector<std::pair<std::string, std::string>> last_options(std::string_view body) {
    std::vector<std::pair<std::string, std::string>> out;
    try {
        auto v = cordon::gojson::parse(body);
        const cordon::gojson::Value* found = nullptr;
        auto walk = [&](auto&& self, const cordon::gojson::Value& x) -> void {
            for (const auto& [k, m] : x.members) {
                if ((k == "DriverOpts" || k == "Options") && m.is_object())
                    found = &m;
                self(self, m);
            }
            for (const auto& i : x.items) self(self, i);
        };
        walk(walk, v);
        if (found)
            for (const auto& [k, m] : found->members) out.emplace_back(k, m.text);
    } catch (const cordon::gojson::ParseError&) {
    }
    return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    static const char* targets[] = {"/v1.41/containers/create",  "/v1.41/containers/c/update",
                                    "/v1.41/containers/c/exec",  "/v1.41/exec/e/start",
                                    "/v1.41/volumes/create",     "/v1.41/networks/create",
                                    "/v1.41/networks/n/connect", "/v1.41/commit",
                                    "/v1.41/containers/c/start"};
    static cordon::policy::Policy policy([] {
        cordon::policy::PolicyConfig c;
        c.fs_root = "/nonexistent-cordon-fuzz-root";
        c.socket_image_allowlist = {"sha256:" + std::string(64, 'a')};
        return c;
    }());
    cordon::policy::RequestInfo req{"POST", targets[data[0] % 9], "application/json",
                                    cordon::policy::Role::host};
    std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
    auto head = policy.check_head(req);
    if (head.verdict != cordon::policy::Verdict::inspect)
        std::abort();
    cordon::policy::Lookups l;
    // dockerd knows every image (as the allowlisted one) and every network (a bridge)
    auto decide = [&](std::string_view b) {
        auto d = policy.check_body(req, head, b, &l);
        if (d.verdict != cordon::policy::Verdict::need_lookup)
            return d;
        for (const auto& r : d.lookups) {
            if (r.kind == cordon::policy::LookupRequest::Kind::image)
                l.images[r.name] = {true, "sha256:" + std::string(64, 'a'), {}, {}};
            else if (r.kind == cordon::policy::LookupRequest::Kind::volume)
                // every existing volume was made with the options the input names last
                l.volumes[r.name] = {true, "local", last_options(b)};
            else
                l.networks[r.name] = {true, "id", r.name, "bridge"};
        }
        return policy.check_body(req, head, b, &l);
    };
    auto d = decide(body);
    if (d.verdict == cordon::policy::Verdict::need_lookup)
        std::abort();
    if (d.verdict == cordon::policy::Verdict::allow && d.rewritten_body) {
        auto again = decide(*d.rewritten_body);
        if (again.verdict != cordon::policy::Verdict::allow)
            std::abort();
    }
    if (d.verdict == cordon::policy::Verdict::deny && d.rule.empty())
        std::abort();
    return 0;
}

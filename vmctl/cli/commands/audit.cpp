// vmctl audit: the policy proxy's audit log (the guest agent's `audit` RPC).
#include <ctime>
#include <iomanip>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;

namespace {

std::string text(const json& e, const char* key) {
    if (!e.is_object() || !e.contains(key))
        return "";
    const json& v = e[key];
    if (v.is_string())
        return v.get<std::string>();
    if (v.is_null())
        return "";
    return v.dump();
}

// "time" as the guest wrote it: an ISO string, or seconds since the epoch.
std::string when(const json& e) {
    if (e.is_object() && e.contains("time") && e["time"].is_number()) {
        const std::time_t t = static_cast<std::time_t>(e["time"].get<double>());
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return buf;
    }
    std::string t = text(e, "time");  // 2026-11-26T01:02:03.456Z: seconds are enough here
    if (t.size() > 20 && t[10] == 'T')
        t = t.substr(0, 19) + "Z";
    return t;
}

std::string first_of(const json& e, const char* a, const char* b) {
    std::string v = text(e, a);
    return v.empty() ? text(e, b) : v;
}

bool allowed(const json& e) {
    if (!e.is_object())
        return false;
    if (e.contains("allowed") && e["allowed"].is_boolean())
        return e["allowed"].get<bool>();
    const std::string d = text(e, "decision");
    return d == "allow" || d == "allowed";
}

std::string cut(std::string s, std::size_t n) {
    if (s.size() > n)
        s = s.substr(0, n - 3) + "...";
    return s;
}

}  // namespace

CLI::App* AuditCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("audit",
                                 "Show the policy proxy's audit log: the Docker API requests it "
                                 "decided on, newest last (the guest agent's `audit` RPC)");
    app_->add_option("-n,--limit", limit_, "How many recent entries (1-1000)")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    app_->add_flag("--denied", denied_only_, "Only the refused requests");
    return app_;
}

int AuditCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    json r = vm.call_agent("audit", {{"limit", limit_}}, std::chrono::seconds(30));
    json entries = json::array();
    const json* src = nullptr;
    if (r.is_array())
        src = &r;
    else if (r.is_object() && r.contains("entries") && r["entries"].is_array())
        src = &r["entries"];
    if (src) {
        for (const auto& e : *src)
            if (!denied_only_ || !allowed(e))
                entries.push_back(e);
    }
    json doc = {{"vm", vm.settings().vm_name}, {"entries", entries}};
    if (r.is_object()) {
        if (r.contains("total"))
            doc["total"] = r["total"];
        if (r.contains("denied"))
            doc["denied"] = r["denied"];
    }
    ctx.out().result(doc, [&](std::ostream& o) {
        if (entries.empty()) {
            o << (denied_only_ ? "no refused requests in the audit log\n"
                               : "the audit log is empty\n");
        } else {
            o << std::left << std::setw(21) << "TIME" << std::setw(7) << "RESULT" << std::setw(7)
              << "METHOD" << std::setw(38) << "PATH"
              << "REASON\n";
            for (const auto& e : entries) {
                o << std::left << std::setw(21) << cut(when(e), 20) << std::setw(7)
                  << (allowed(e) ? "allow" : "DENY") << std::setw(7) << cut(text(e, "method"), 6)
                  << std::setw(38) << cut(first_of(e, "target", "path"), 37)
                  << first_of(e, "message", "reason") << "\n";
            }
        }
        if (doc.contains("total") && doc.contains("denied"))
            o << doc["total"].dump() << " requests since the agent started, "
              << doc["denied"].dump() << " refused\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

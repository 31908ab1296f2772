#include "cordon/guest/service_record.hpp"

#include <unistd.h>

#include <array>
#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cordon/atomic_file.hpp"
#include "cordon/error.hpp"

namespace cordon::guest {

std::optional<ProcIdentity> read_proc_identity(int pid) {
    if (pid <= 0)
        return std::nullopt;
    const std::string dir = "/proc/" + std::to_string(pid);
    std::ifstream in(dir + "/stat");
    std::string line;
    if (!std::getline(in, line))
        return std::nullopt;
    // "PID (COMM) S PPID ..." where COMM may itself hold ')' and spaces: the last ')' ends it.
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open)
        return std::nullopt;
    ProcIdentity id;
    id.pid = pid;
    id.comm = line.substr(open + 1, close - open - 1);
    std::istringstream rest(line.substr(close + 1));
    std::string field;
    // Field 3 is the state, field 22 the start time.
    for (int n = 3; n <= 22 && rest >> field; ++n) {
        if (n == 3)
            id.state = field.empty() ? '?' : field[0];
        if (n == 22) {
            try {
                id.start_time = std::stoull(field);
            } catch (const std::exception&) {
                return std::nullopt;
            }
        }
    }
    if (id.start_time == 0)
        return std::nullopt;
    std::array<char, 4096> buf{};
    const ssize_t n = ::readlink((dir + "/exe").c_str(), buf.data(), buf.size() - 1);
    if (n > 0)
        id.exe.assign(buf.data(), static_cast<std::size_t>(n));
    return id;
}

std::string service_record_file(const std::string& dir, const std::string& name) {
    return dir + "/" + name + ".record";
}

void write_service_record(const std::string& dir, const std::string& name, const ServiceRecord& r) {
    nlohmann::json j = {{"pid", r.pid},        {"start_time", r.start_time}, {"comm", r.comm},
                        {"exe", r.exe},        {"starts", r.starts},         {"command", r.command},
                        {"configs", r.configs}};
    // Config files may hold any bytes: dump() replaces invalid UTF-8 rather than throwing.
    write_file_atomically(service_record_file(dir, name),
                          j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                          0600);
}

std::optional<ServiceRecord> read_service_record(const std::string& dir, const std::string& name) {
    const std::string path = service_record_file(dir, name);
    if (::access(path.c_str(), F_OK) != 0)
        return std::nullopt;
    const auto j = nlohmann::json::parse(read_file(path), nullptr, false);
    const char* hint = "a new start of the service replaces it";
    if (!j.is_object())
        throw Error("a service record is not a JSON object", path, hint);
    ServiceRecord r;
    try {
        r.pid = j.at("pid").get<int>();
        r.start_time = j.at("start_time").get<std::uint64_t>();
        r.comm = j.at("comm").get<std::string>();
        r.exe = j.at("exe").get<std::string>();
        r.starts = j.at("starts").get<std::uint64_t>();
        r.command = j.at("command").get<std::string>();
        r.configs = j.value("configs", std::map<std::string, std::string>{});
    } catch (const nlohmann::json::exception& e) {
        throw Error(std::string("a service record is malformed: ") + e.what(), path, hint);
    }
    return r;
}

std::string describe_command(const std::vector<std::string>& argv,
                             const std::vector<std::string>& env) {
    nlohmann::json j = {{"argv", argv}, {"env", env}};
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string identity_mismatch(const ServiceRecord& record, const std::optional<ProcIdentity>& now) {
    const std::string pid = "pid " + std::to_string(record.pid);
    if (record.pid <= 1)
        return "the record names no usable pid (" + pid + ")";
    if (!now)
        return pid + " is gone";
    if (now->gone())
        return pid + " has exited (state " + std::string(1, now->state) + ")";
    if (now->start_time != record.start_time)
        return pid + " was reused by another process (start time " +
               std::to_string(now->start_time) + ", recorded " + std::to_string(record.start_time) +
               ")";
    if (now->comm != record.comm)
        return pid + " now runs '" + now->comm + "', recorded '" + record.comm + "'";
    if (now->exe != record.exe)
        return pid + " now runs " + (now->exe.empty() ? "(unreadable)" : now->exe) + ", recorded " +
               (record.exe.empty() ? "(unreadable)" : record.exe);
    return {};
}

}  // namespace cordon::guest

#include "cordon/guest/system_info.hpp"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon::guest {

KernelInfo read_kernel() {
    utsname u{};
    if (::uname(&u) != 0)
        throw_errno("uname failed");
    return {u.release, u.version, u.machine};
}

double read_uptime(const std::string& path) {
    std::ifstream in(path);
    double up = 0;
    if (!(in >> up))
        throw Error("cannot read the uptime", path, "is /proc mounted?");
    return up;
}

MemoryInfo read_memory(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw Error("cannot read memory information", path, "is /proc mounted?");
    MemoryInfo m;
    bool total = false;
    std::string key;
    std::uint64_t value = 0;
    std::string unit;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        if (!(ls >> key >> value))
            continue;
        if (key == "MemTotal:") {
            m.total_kib = value;
            total = true;
        } else if (key == "MemAvailable:") {
            m.available_kib = value;
        } else if (key == "MemFree:") {
            m.free_kib = value;
        }
    }
    if (!total)
        throw Error("no MemTotal in the memory information", path);
    return m;
}

BootTimes read_boot_times(const std::string& path) {
    BootTimes out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::string name;
        double t = 0;
        if (ls >> name >> t)
            out.emplace_back(name, t);
    }
    return out;
}

void append_boot_time(const std::string& path, const std::string& name, double seconds) {
    char line[160];
    const int n = std::snprintf(line, sizeof line, "%s %.2f\n", name.c_str(), seconds);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof line) {
        throw Error("boot timing name too long", name);
    }
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (!fd)
        throw_errno("cannot open the boot timings", path);
    if (::write(fd.get(), line, static_cast<std::size_t>(n)) != n) {
        throw_errno("cannot write the boot timings", path);
    }
}

std::map<std::string, std::string> read_key_values(const std::string& path) {
    std::map<std::string, std::string> kv;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto eq = line.find('=');
        if (eq == std::string::npos || eq == 0)
            continue;
        kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return kv;
}

DataDiskState read_data_disk(const std::string& path) {
    DataDiskState d;
    if (::access(path.c_str(), F_OK) != 0) {
        d.message = "the init left no data disk report (" + path + ")";
        return d;
    }
    auto kv = read_key_values(path);
    if (kv.count("state"))
        d.state = kv["state"];
    d.device = kv["device"];
    d.formatted = kv["formatted"] == "1";
    d.message = kv["message"];
    if (d.state.empty())
        d.state = "unknown";
    return d;
}

std::uint64_t bump_counter(const std::string& path) {
    std::uint64_t value = 0;
    {
        std::ifstream in(path);
        if (in) {
            std::string text;
            std::getline(in, text);
            const auto* first = text.data();
            const auto* last = text.data() + text.size();
            auto [p, ec] = std::from_chars(first, last, value);
            if (ec != std::errc() || p != last || text.empty()) {
                throw Error("the counter file does not hold a number", path,
                            "the data disk may be damaged; remove the file to reset the counter");
            }
        }
    }
    ++value;
    const std::string tmp = path + ".tmp";
    const std::string text = std::to_string(value) + "\n";
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!fd)
            throw_errno("cannot write the counter", tmp);
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
            ::fsync(fd.get()) != 0) {
            throw_errno("cannot write the counter", tmp);
        }
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0)
        throw_errno("cannot replace the counter", path);
    return value;
}

}  // namespace cordon::guest

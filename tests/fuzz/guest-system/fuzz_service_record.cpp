// libFuzzer target: the service records a guest agent leaves for its successor (which
// decide whether a running dockerd is adopted). Invariants: no crash; a bad record is
// only ever a cordon::Error naming the file; an accepted record written back reads as
// the same record; a record never matches a process that does not exist.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "cordon/error.hpp"
#include "cordon/guest/service_record.hpp"

using namespace cordon::guest;
namespace fs = std::filesystem;

namespace {
const std::string& dir() {
    static const std::string d = [] {
        fs::path p =
            fs::temp_directory_path() / ("cordon-fuzz-records-" + std::to_string(::getpid()));
        fs::create_directories(p);
        return p.string();
    }();
    return d;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string file = service_record_file(dir(), "dockerd");
    {
        std::ofstream(file, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    }
    std::optional<ServiceRecord> r;
    try {
        r = read_service_record(dir(), "dockerd");
    } catch (const cordon::Error& e) {
        if (e.subject() != file)
            __builtin_trap();
        return 0;
    }
    if (!r)
        __builtin_trap();  // the file exists
    write_service_record(dir(), "copy", *r);
    const auto back = read_service_record(dir(), "copy");
    if (!back || back->pid != r->pid || back->start_time != r->start_time ||
        back->comm != r->comm || back->exe != r->exe || back->starts != r->starts ||
        back->command != r->command)
        __builtin_trap();
    // Identity: a record is never adoptable against a process that is not there.
    if (identity_mismatch(*r, std::nullopt).empty())
        __builtin_trap();
    return 0;
}

#pragma once
// Everything vmctl prints goes through Output: human text or one JSON document on
// stdout (--json), progress lines, errors and their exit codes.
#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>

#include "cordon/host/host_error.hpp"

namespace vmctl {

// Documented in docs/VMCTL.md; never renumber.
enum Exit : int {
    ok = 0,
    failure = 1,
    usage = 2,
    config = 3,
    locked = 4,
    image = 5,
    libvirt_unreachable = 6,
    libvirt_error = 7,
    vm_not_found = 8,
    vm_not_running = 9,
    agent_unreachable = 10,
    timeout = 11,
    confirmation_required = 12,
    guest_error = 13,
    busy = 14,
    cancelled = 130,  // as a shell reports Ctrl-C
};

int exit_code(cordon::host::ErrorKind kind);

class Output {
  public:
    Output(std::ostream& out, std::ostream& err) : out_(out), err_(err) {}
    void set_json(bool json) { json_ = json; }
    bool json() const { return json_; }

    // A command's result: the JSON document in --json mode, else human() writes text.
    void result(nlohmann::json data, const std::function<void(std::ostream&)>& human);
    // A line of progress: stdout for people, stderr in --json mode (stdout stays one document).
    void progress(const std::string& line);
    // A warning that does not change the result.
    void warn(const std::string& line);
    // Prints the error (JSON on stdout in --json mode) and returns its exit code.
    int error(const cordon::host::HostError& e);
    int error(const cordon::Error& e, int code);
    int error(const std::string& message, int code, const std::string& kind = "failure",
              const std::string& hint = {});

    std::ostream& out() { return out_; }
    std::ostream& err() { return err_; }

  private:
    std::ostream& out_;
    std::ostream& err_;
    bool json_ = false;
};

// Human text for common values.
std::string yes_no(bool b);
std::string on_off(bool b);

}  // namespace vmctl

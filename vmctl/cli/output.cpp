#include "output.hpp"

#include <ostream>

using cordon::host::ErrorKind;

namespace vmctl {

int exit_code(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::generic:
            return Exit::failure;
        case ErrorKind::usage:
            return Exit::usage;
        case ErrorKind::config:
            return Exit::config;
        case ErrorKind::locked:
            return Exit::locked;
        case ErrorKind::image:
            return Exit::image;
        case ErrorKind::libvirt_unreachable:
            return Exit::libvirt_unreachable;
        case ErrorKind::libvirt:
            return Exit::libvirt_error;
        case ErrorKind::vm_not_found:
            return Exit::vm_not_found;
        case ErrorKind::vm_not_running:
            return Exit::vm_not_running;
        case ErrorKind::agent_unreachable:
            return Exit::agent_unreachable;
        case ErrorKind::timeout:
            return Exit::timeout;
        case ErrorKind::confirmation_required:
            return Exit::confirmation_required;
        case ErrorKind::rpc:
            return Exit::guest_error;
        case ErrorKind::busy:
            return Exit::busy;
        case ErrorKind::cancelled:
            return Exit::cancelled;
    }
    return Exit::failure;
}

void Output::result(nlohmann::json data, const std::function<void(std::ostream&)>& human) {
    if (json_) {
        if (data.is_object() && !data.contains("ok"))
            data["ok"] = true;
        out_ << data.dump(2) << "\n";
    } else if (human) {
        human(out_);
    }
    out_.flush();
}

void Output::progress(const std::string& line) {
    (json_ ? err_ : out_) << "• " << line << "\n";
    (json_ ? err_ : out_).flush();
}

void Output::warn(const std::string& line) {
    err_ << "vmctl: warning: " << line << "\n";
}

int Output::error(const cordon::host::HostError& e) {
    const int code = exit_code(e.kind());
    if (json_) {
        nlohmann::json err = {{"kind", std::string(cordon::host::to_string(e.kind()))},
                              {"message", e.failure()},
                              {"subject", e.subject()},
                              {"hint", e.hint()},
                              {"exit_code", code}};
        if (!e.rpc_code().empty())
            err["rpc_code"] = e.rpc_code();
        out_ << nlohmann::json{{"ok", false}, {"error", err}}.dump(2) << "\n";
    } else {
        err_ << "vmctl: " << e.failure();
        if (!e.subject().empty())
            err_ << " (" << e.subject() << ")";
        err_ << "\n";
        if (!e.hint().empty())
            err_ << "  hint: " << e.hint() << "\n";
    }
    return code;
}

int Output::error(const cordon::Error& e, int code) {
    return error(
        cordon::host::HostError(code == Exit::usage ? ErrorKind::usage : ErrorKind::generic,
                                e.failure(), e.subject(), e.hint()));
}

int Output::error(const std::string& message, int code, const std::string& kind,
                  const std::string& hint) {
    if (json_) {
        out_ << nlohmann::json{{"ok", false},
                               {"error",
                                {{"kind", kind},
                                 {"message", message},
                                 {"hint", hint},
                                 {"exit_code", code}}}}
                    .dump(2)
             << "\n";
    } else {
        err_ << "vmctl: " << message << "\n";
        if (!hint.empty())
            err_ << "  hint: " << hint << "\n";
    }
    return code;
}

std::string yes_no(bool b) {
    return b ? "yes" : "no";
}
std::string on_off(bool b) {
    return b ? "on" : "off";
}

}  // namespace vmctl

#pragma once
// The error convention of the libraries (host library, guest agent logic):
// throw cordon::Error, which says what failed, on what, and how to fix it.
// Asynchronous I/O paths use boost::system::error_code as Asio does and turn
// it into an Error at the boundary where a person will read it.
#include <stdexcept>
#include <string>

namespace cordon {

class Error : public std::runtime_error {
public:
    // what: what failed ("cannot open the data disk"); subject: on what
    // ("/var/lib/cordon/data.qcow2"); hint: how to fix it (may be empty).
    Error(std::string what, std::string subject = {}, std::string hint = {});

    const std::string& failure() const noexcept { return what_; }
    const std::string& subject() const noexcept { return subject_; }
    const std::string& hint() const noexcept { return hint_; }

private:
    static std::string compose(const std::string& what, const std::string& subject,
                               const std::string& hint);
    std::string what_;
    std::string subject_;
    std::string hint_;
};

// errno as a readable string, thread-safe.
std::string errno_string(int err);

// Throws cordon::Error("<what>: <strerror(errno)>", subject, hint).
[[noreturn]] void throw_errno(const std::string& what, const std::string& subject = {},
                              const std::string& hint = {});

}  // namespace cordon

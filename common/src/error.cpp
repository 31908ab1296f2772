#include "cordon/error.hpp"

#include <cerrno>
#include <cstring>

namespace cordon {

Error::Error(std::string what, std::string subject, std::string hint)
    : std::runtime_error(compose(what, subject, hint)),
      what_(std::move(what)),
      subject_(std::move(subject)),
      hint_(std::move(hint)) {}

std::string Error::compose(const std::string& what, const std::string& subject,
                           const std::string& hint) {
    std::string s = what;
    if (!subject.empty()) s += " (" + subject + ")";
    if (!hint.empty()) s += ": " + hint;
    return s;
}

std::string errno_string(int err) {
    char buf[256];
    // GNU strerror_r returns a pointer that may or may not be buf.
    const char* msg = strerror_r(err, buf, sizeof buf);
    return msg;
}

void throw_errno(const std::string& what, const std::string& subject, const std::string& hint) {
    const int err = errno;
    throw Error(what + ": " + errno_string(err), subject, hint);
}

}  // namespace cordon

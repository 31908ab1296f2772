#include "cordon/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/unique_fd.hpp"

namespace cordon {
namespace {

std::string parent_of(const std::string& path) {
    const auto slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view contents, mode_t mode) {
    const std::string dir = parent_of(path);
    std::string tmp = path + ".tmp-XXXXXX";
    UniqueFd fd(::mkstemp(tmp.data()));
    if (!fd) throw_errno("cannot create a temporary file beside", path, "check that " + dir + " exists and is writable");
    bool committed = false;
    struct Cleanup {
        const std::string& tmp;
        bool& committed;
        ~Cleanup() {
            if (!committed) ::unlink(tmp.c_str());
        }
    } cleanup{tmp, committed};

    const char* p = contents.data();
    std::size_t left = contents.size();
    while (left > 0) {
        const ssize_t n = ::write(fd.get(), p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno("cannot write", tmp, "check free space on the disk holding " + dir);
        }
        p += n;
        left -= static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0) throw_errno("cannot set the mode of", tmp);
    if (::fsync(fd.get()) != 0) throw_errno("cannot flush", tmp, "check the disk holding " + dir);
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot replace", path);
    committed = true;
    UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd) ::fsync(dfd.get());  // best effort: the rename itself already happened
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_errno("cannot read", path, "check that the file exists and is readable");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw Error("cannot read", path, "the file could not be read to its end");
    return ss.str();
}

}  // namespace cordon

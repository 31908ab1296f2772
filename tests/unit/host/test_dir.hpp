#pragma once
// A temporary folder for one test, removed afterwards.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cordon::host::test {

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/cordon-host-test-XXXXXX";
        path_ = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }
    std::filesystem::path write(const std::string& name, const std::string& content) const {
        auto p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p) << content;
        return p;
    }

  private:
    std::filesystem::path path_;
};

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace cordon::host::test

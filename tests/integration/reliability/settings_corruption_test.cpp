// Settings files that are corrupted (truncated JSON, garbage, not an object, wrong types)
// or unreadable (a folder in the file's place): every vmctl command that reads them fails
// with the config exit code and an error naming the file, and nothing rewrites the file.
// Runs the real vmctl binary; no VM and no libvirt needed (the error comes first).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr int kExitConfig = 3;

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

class SettingsCorruption : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/cordon-settings-XXXXXX";
        base_ = ::mkdtemp(tmpl);
        user_ = base_ / "config" / "cordon" / "settings.json";
        admin_ = base_ / "admin-settings.json";
        fs::create_directories(user_.parent_path());
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(base_, ec);
    }
    cordon::ProcessResult vmctl(const std::vector<std::string>& args) const {
        std::vector<std::string> argv{CORDON_VMCTL_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        cordon::SpawnOptions o;
        o.env_overrides = {"XDG_CONFIG_HOME=" + (base_ / "config").string(),
                           "CORDON_ADMIN_SETTINGS=" + admin_.string(),
                           "CORDON_STATE_DIR=" + (base_ / "state").string(),
                           "CORDON_RUNTIME_DIR=" + (base_ / "run").string(),
                           "CORDON_CACHE_DIR=" + (base_ / "cache").string(),
                           "CORDON_IMAGE_DIR=" + (base_ / "no-image").string()};
        return cordon::run(argv, 60s, o);
    }
    // Every command that reads settings refuses, names the file, and leaves it as it was.
    void expect_refused_everywhere(const fs::path& file) {
        const std::string before = fs::is_regular_file(file) ? read_all(file) : std::string();
        for (const auto& args :
             std::vector<std::vector<std::string>>{{"status"},
                                                   {"start"},
                                                   {"settings", "get"},
                                                   {"settings", "set", "cpus", "3"},
                                                   {"isolation", "on", "--yes"}}) {
            auto r = vmctl(args);
            std::string cmd;
            for (const auto& a : args) cmd += a + " ";
            EXPECT_EQ(r.exit_code, kExitConfig) << cmd << "\n" << r.out << r.err;
            EXPECT_NE((r.err + r.out).find(file.string()), std::string::npos)
                << cmd << ": the error does not name " << file << "\n"
                << r.err << r.out;
            if (fs::is_regular_file(file)) {
                EXPECT_EQ(read_all(file), before) << cmd << " rewrote " << file;
            }
        }
        auto j = vmctl({"status", "--json"});
        auto doc = nlohmann::json::parse(j.out, nullptr, false);
        ASSERT_TRUE(doc.is_object()) << j.out << j.err;
        EXPECT_FALSE(doc.value("ok", true));
        EXPECT_EQ(doc["error"].value("kind", ""), "config") << j.out;
        EXPECT_NE(doc["error"].dump().find(file.string()), std::string::npos) << j.out;
        EXPECT_FALSE(doc["error"].value("hint", "").empty()) << "no hint how to fix it: " << j.out;
        // No temporary or backup file was left beside it.
        for (const auto& e : fs::directory_iterator(file.parent_path())) {
            const std::string n = e.path().filename().string();
            EXPECT_TRUE(e.path() == file || n == "cordon" || n == "config" || n == "state" ||
                        n == "run" || n == "cache")
                << "left behind: " << e.path();
        }
    }
    void write(const fs::path& p, const std::string& text) {
        std::ofstream(p, std::ios::binary) << text;
    }

    fs::path base_, user_, admin_;
};

}  // namespace

TEST_F(SettingsCorruption, TruncatedUserSettings) {
    write(user_, "{\"cpus\": 2, \"memory_mib\": 40");
    expect_refused_everywhere(user_);
}

TEST_F(SettingsCorruption, BinaryGarbageInUserSettings) {
    write(user_, std::string("\x7f"
                             "ELF\x02\x01\x01\0\0\0garbage\xff\xfe",
                             19));
    expect_refused_everywhere(user_);
}

TEST_F(SettingsCorruption, UserSettingsThatAreNotAnObject) {
    write(user_, "[1, 2, 3]\n");
    expect_refused_everywhere(user_);
}

TEST_F(SettingsCorruption, WrongTypeInUserSettings) {
    write(user_, "{\"cpus\": \"many\"}\n");
    expect_refused_everywhere(user_);
}

TEST_F(SettingsCorruption, TruncatedAdminSettings) {
    write(user_, "{\"cpus\": 2}\n");
    write(admin_, "{\"locked\": [\"isolation\"], \"isolation\": tru");
    expect_refused_everywhere(admin_);
    EXPECT_EQ(read_all(user_), "{\"cpus\": 2}\n") << "the user's file was rewritten";
}

TEST_F(SettingsCorruption, UnreadableUserSettings) {
    // A folder where the file should be: reading fails even for root.
    fs::create_directories(user_);
    expect_refused_everywhere(user_);
    EXPECT_TRUE(fs::is_directory(user_)) << "the unreadable path was replaced";
}

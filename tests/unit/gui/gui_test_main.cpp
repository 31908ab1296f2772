// main() for GUI test suites: a QApplication on the offscreen platform (unless
// QT_QPA_PLATFORM says otherwise), and every path the app writes under a
// private temp folder (QSettings, user settings, VM state and runtime dirs).
#include "gui_test_main.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <QApplication>
#include <fstream>
#include <sstream>

namespace cordon::gui::test {
namespace {
std::filesystem::path g_root;
}

std::filesystem::path tempDir(const std::string& name) {
    auto p = g_root / name;
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
    return p;
}

void writeFile(const std::filesystem::path& p, const std::string& content) {
    std::filesystem::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
}

std::string readFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool waitFor(const std::function<bool()>& pred, int timeoutMs) {
    return QTest::qWaitFor(pred, timeoutMs);
}

}  // namespace cordon::gui::test

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
        qputenv("QT_QPA_PLATFORM", "offscreen");
    char tmpl[] = "/tmp/cordon-gui-test-XXXXXX";
    const char* root = ::mkdtemp(tmpl);
    if (!root)
        return 2;
    cordon::gui::test::g_root = root;
    // QEMU runs as its own user under qemu:///system: it must reach the data disk
    // and the console log in the state folder (mkdtemp makes the root 0700).
    std::filesystem::permissions(
        root, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                  std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                  std::filesystem::perms::others_exec);
    const std::string r = root;
    // The suites run VMs under short runtime paths (sun_path is 108 bytes).
    setenv("XDG_CONFIG_HOME", (r + "/config").c_str(), 1);
    setenv("XDG_RUNTIME_DIR", (r + "/run").c_str(), 1);
    if (!getenv("CORDON_KEEP_VM_DIRS")) {
        setenv("CORDON_STATE_DIR", (r + "/state").c_str(), 1);
        setenv("CORDON_RUNTIME_DIR", (r + "/rt").c_str(), 1);
        setenv("CORDON_CACHE_DIR", (r + "/cache").c_str(), 1);
    }
    std::filesystem::create_directories(r + "/run");
    std::filesystem::permissions(r + "/run", std::filesystem::perms::owner_all);
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("cordon-test"));
    QApplication::setApplicationName(QStringLiteral("cordon-desktop-test"));
    const int rc = RUN_ALL_TESTS();
    if (!getenv("CORDON_KEEP_TEST_DIR")) {
        std::error_code ec;
        std::filesystem::remove_all(root, ec);
    }
    return rc;
}

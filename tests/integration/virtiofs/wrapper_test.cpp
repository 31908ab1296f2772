// cordon-virtiofsd for real: the user namespace and its ID maps, the read-only bind, the
// argument pass-through, and its refusals. A shell script stands in for virtiofsd and
// reports its uid, its uid_map and whether it can write the source folder.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cordon/subprocess.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

class Wrapper : public ::testing::Test {
protected:
    void SetUp() override {
        if (::geteuid() != 0) GTEST_SKIP() << "needs root (writes another process's ID maps)";
        char tmpl[] = "/tmp/cordon-vfs-wrapper-XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        // virtiofsd runs as the share owner: it must be able to reach the folder.
        ::chmod(dir_.c_str(), 0755);
        fs::create_directories(dir_ + "/share");
        ASSERT_EQ(::chown((dir_ + "/share").c_str(), 4242, 4242), 0);
        fake_ = dir_ + "/fake-virtiofsd";
        std::ofstream(fake_) << "#!/bin/sh\n"
                                "echo \"args: $*\"\n"
                                "echo \"uid: $(id -u)\"\n"
                                "echo \"map: $(awk '{printf \"%s %s %s;\", $1, $2, $3}' /proc/self/uid_map)\"\n"
                                "if echo hi > " << dir_ << "/share/new 2>/dev/null; then echo wrote; else echo refused; fi\n";
        fs::permissions(fake_, fs::perms(0755));
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }
    cordon::ProcessResult wrap(std::vector<std::string> opts) {
        std::vector<std::string> argv{CORDON_VIRTIOFSD_WRAPPER_PATH};
        argv.insert(argv.end(), opts.begin(), opts.end());
        const std::vector<std::string> rest{"--virtiofsd", fake_, "--", "--fd=3", "-o",
                                            "source=" + dir_ + "/share,no_xattr"};
        argv.insert(argv.end(), rest.begin(), rest.end());
        return cordon::run(argv, 30s);
    }
    std::string dir_, fake_;
};

TEST_F(Wrapper, RunsVirtiofsdAsRootOfANamespaceWhoseRootIsTheOwner) {
    auto r = wrap({"--uid-map", "0:4242:1", "--gid-map", "0:4242:1"});
    ASSERT_TRUE(r.ok()) << r.err << r.out;
    EXPECT_NE(r.out.find("uid: 0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("map: 0 4242 1;"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("args: --fd=3 -o source=" + dir_ + "/share,no_xattr --rlimit-nofile=0"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
    struct stat st {};
    ASSERT_EQ(::stat((dir_ + "/share/new").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 4242u) << "a file created inside belongs to the mapped host user";
    EXPECT_EQ(st.st_gid, 4242u);
}

TEST_F(Wrapper, TheIsolationMapMakesVmUid100000TheOwner) {
    auto r = wrap({"--uid-map", "0:65534:1,100000:4242:1", "--gid-map", "0:65534:1,100000:4242:1"});
    ASSERT_TRUE(r.ok()) << r.err << r.out;
    EXPECT_NE(r.out.find("map: 0 65534 1;100000 4242 1;"), std::string::npos) << r.out;
    // Root of the namespace is host nobody: its capabilities do not reach a folder of
    // host uid 4242 with mode 0755 unless 4242 is mapped (it is), so it writes.
    EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
}

TEST_F(Wrapper, ReadOnlyMakesTheFolderReadOnlyForVirtiofsd) {
    auto r = wrap({"--uid-map", "0:4242:1", "--gid-map", "0:4242:1", "--read-only"});
    ASSERT_TRUE(r.ok()) << r.err << r.out;
    EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out;
    EXPECT_FALSE(fs::exists(dir_ + "/share/new"));
    // Only inside its own mount namespace: the host still writes there.
    std::ofstream(dir_ + "/share/host-file") << "x";
    EXPECT_TRUE(fs::exists(dir_ + "/share/host-file"));
}

TEST_F(Wrapper, AFolderOfAnUnmappedUserIsNotWritable) {
    ASSERT_EQ(::chown((dir_ + "/share").c_str(), 0, 0), 0);
    auto r = wrap({"--uid-map", "0:4242:1", "--gid-map", "0:4242:1"});
    ASSERT_TRUE(r.ok()) << r.err << r.out;
    EXPECT_NE(r.out.find("refused"), std::string::npos) << "namespace root wrote a host root folder: " << r.out;
}

TEST_F(Wrapper, RefusesBadMapsAndMissingOptions) {
    for (const std::vector<std::string>& opts :
         {std::vector<std::string>{"--uid-map", "5:4242:1", "--gid-map", "0:4242:1"},
          {"--uid-map", "0:4242:1"},
          {"--uid-map", "0:4242:1,0:5:1", "--gid-map", "0:4242:1"},
          {"--uid-map", "bad", "--gid-map", "0:4242:1"},
          {"--bogus"}}) {
        auto r = wrap(opts);
        EXPECT_EQ(r.exit_code, 2) << opts[0] << " " << r.out;
        EXPECT_NE(r.err.find("cordon-virtiofsd:"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("uid:"), std::string::npos) << "virtiofsd ran anyway";
    }
}

TEST_F(Wrapper, CapabilityProbesPassStraightThrough) {
    auto r = cordon::run({CORDON_VIRTIOFSD_WRAPPER_PATH, "--virtiofsd", fake_, "--", "--print-capabilities"}, 30s);
    ASSERT_TRUE(r.ok()) << r.err;
    EXPECT_NE(r.out.find("args: --print-capabilities\n"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("rlimit"), std::string::npos) << r.out;
}

}  // namespace

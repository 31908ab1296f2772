// vmctl's output formats and exit codes.
#include "output.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

using namespace cordon::host;
using vmctl::Output;

TEST(VmctlOutput, EveryErrorKindHasItsOwnExitCode) {
    std::set<int> codes;
    for (ErrorKind k :
         {ErrorKind::generic, ErrorKind::usage, ErrorKind::config, ErrorKind::locked,
          ErrorKind::image, ErrorKind::libvirt_unreachable, ErrorKind::libvirt,
          ErrorKind::vm_not_found, ErrorKind::vm_not_running, ErrorKind::agent_unreachable,
          ErrorKind::timeout, ErrorKind::confirmation_required, ErrorKind::rpc}) {
        const int c = vmctl::exit_code(k);
        EXPECT_NE(c, 0);
        EXPECT_TRUE(codes.insert(c).second) << "exit code " << c << " used twice";
    }
    EXPECT_EQ(vmctl::exit_code(ErrorKind::usage), 2);
    EXPECT_EQ(vmctl::exit_code(ErrorKind::libvirt_unreachable), 6);
}

TEST(VmctlOutput, JsonModePrintsOneDocumentAndErrorsAsJson) {
    std::ostringstream out, err;
    Output o(out, err);
    o.set_json(true);
    o.progress("working");
    o.result({{"state", "running"}}, [](std::ostream& s) { s << "human text\n"; });
    auto j = nlohmann::json::parse(out.str());
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["ok"], true);
    EXPECT_NE(err.str().find("working"), std::string::npos)
        << "progress goes to stderr in --json mode";
    std::ostringstream out2;
    Output o2(out2, err);
    o2.set_json(true);
    int code = o2.error(
        HostError(ErrorKind::vm_not_running, "the VM is not running", "cordon", "start it"));
    EXPECT_EQ(code, 9);
    auto e = nlohmann::json::parse(out2.str());
    EXPECT_EQ(e["ok"], false);
    EXPECT_EQ(e["error"]["kind"], "vm_not_running");
    EXPECT_EQ(e["error"]["hint"], "start it");
    EXPECT_EQ(e["error"]["exit_code"], 9);
}

TEST(VmctlOutput, HumanModePrintsTextAndHints) {
    std::ostringstream out, err;
    Output o(out, err);
    o.result({{"state", "running"}}, [](std::ostream& s) { s << "human text\n"; });
    EXPECT_EQ(out.str(), "human text\n");
    o.error(HostError(ErrorKind::locked, "isolation is locked on by the administrator in /etc/x",
                      {}, "ask"));
    EXPECT_NE(err.str().find("vmctl: isolation is locked on"), std::string::npos);
    EXPECT_NE(err.str().find("hint: ask"), std::string::npos);
}

// Shared folders on the host side: the setting, ID maps for virtiofsd's user namespace,
// the guest's command line words, the wrapper scripts, and the domain XML they produce.
#include "cordon/host/shares.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <sys/stat.h>

#include <memory>

#include "cordon/host/domain_xml.hpp"
#include "cordon/host/host_error.hpp"
#include "cordon/host/settings.hpp"
#include "test_dir.hpp"

using namespace cordon::host;
using cordon::host::test::slurp;
using cordon::host::test::TempDir;
using nlohmann::json;

namespace {

std::string xpath(const std::string& xml, const std::string& expr, int* count = nullptr) {
    std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc(
        xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "d.xml", nullptr, XML_PARSE_NONET),
        xmlFreeDoc);
    if (!doc)
        return "<unparsable>";
    std::unique_ptr<xmlXPathContext, decltype(&xmlXPathFreeContext)> ctx(
        xmlXPathNewContext(doc.get()), xmlXPathFreeContext);
    std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> r(
        xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(expr.c_str()), ctx.get()),
        xmlXPathFreeObject);
    const int n = r && r->nodesetval ? r->nodesetval->nodeNr : 0;
    if (count)
        *count = n;
    if (n == 0)
        return "<none>";
    xmlChar* s = xmlNodeGetContent(r->nodesetval->nodeTab[0]);
    std::string out = s ? reinterpret_cast<const char*>(s) : "";
    xmlFree(s);
    return out;
}

DomainSpec base_spec() {
    DomainSpec s;
    s.name = "cordon";
    s.kernel = "/img/vmlinuz";
    s.initrd = "/img/initrd.img";
    s.cmdline = "console=ttyS0";
    s.data_disk = "/d/data.qcow2";
    s.channel_socket = "/r/channel.sock";
    s.console_log = "/d/console.log";
    return s;
}

}  // namespace

TEST(IdMap, ParsesAndPrintsBothForms) {
    IdMap m = parse_id_map("0:65534:1,100000:1000:1");
    ASSERT_EQ(m.entries.size(), 2u);
    EXPECT_EQ(m.entries[1], (IdMapEntry{100000, 1000, 1}));
    EXPECT_TRUE(m.maps_root());
    EXPECT_EQ(m.text(), "0:65534:1,100000:1000:1");
    EXPECT_EQ(m.kernel_text(), "0 65534 1\n100000 1000 1\n");
    EXPECT_FALSE(parse_id_map("5:6:10").maps_root());
}

TEST(IdMap, RefusesBadMaps) {
    for (const char* bad : {"", "0:1", "0:1:0", "a:1:1", "0:1:1,", "-1:0:1", "0:4294967295:2",
                            "0:1000:10,5:2000:1", "0:1000:1,7:1000:1", "0:1:1:1",
                            "0:1:1,1:2:1,2:3:1,3:4:1,4:5:1,5:6:1", "99999999999:0:1"}) {
        EXPECT_THROW(parse_id_map(bad), cordon::Error) << bad;
    }
}

TEST(IdMap, ContainerRootBecomesTheOwnerInEachMode) {
    // Isolation off: container root is VM uid 0.
    EXPECT_EQ(share_id_map(1000, false).text(), "0:1000:1");
    // Isolation on: container root is VM uid 100000; VM root becomes nobody.
    EXPECT_EQ(share_id_map(1000, true).text(), "0:65534:1,100000:1000:1");
    // Every map is one the kernel and the wrapper accept.
    for (std::uint32_t owner : {0u, 1000u, 65534u, 100000u})
        for (bool iso : {false, true}) {
            IdMap m = parse_id_map(share_id_map(owner, iso).text());
            EXPECT_TRUE(m.maps_root()) << owner << iso;
        }
    EXPECT_EQ(share_id_map(65534, true).text(), "0:65533:1,100000:65534:1");
}

TEST(SharedFolders, CheckAcceptsGoodValuesAndExplainsBadOnes) {
    EXPECT_EQ(check_shared_folders(json::array()), "");
    EXPECT_EQ(check_shared_folders(json::parse(
                  R"([{"path":"~"},{"path":"~/src","readonly":true},{"path":"/srv/data"}])")),
              "");
    for (const char* bad :
         {R"("x")", R"([{"path":"relative"}])", R"([{"path":"/a/../b"}])", R"([{"path":"/"}])",
          R"([{"path":"/etc"}])", R"([{"path":"/usr/local/src"}])", R"([{"path":"/var/lib/x"}])",
          R"([{"path":"/proc"}])", R"([{"path":"/srv/"}])", R"([{"path":"/srv//a"}])",
          R"([{"path":"/srv","readonly":"yes"}])", R"([{"path":"/srv","rw":true}])",
          R"([{"readonly":true}])", R"([{"path":"/tmp"}])"}) {
        EXPECT_NE(check_shared_folders(json::parse(bad)), "") << bad;
    }
    EXPECT_NE(check_shared_folders(json::parse(R"([{"path":"/etc/x"}])")).find("/etc"),
              std::string::npos);
}

TEST(SharedFolders, HomeIsExpandedAndDuplicatesDropped) {
    auto f = shared_folders_from_json(
        json::parse(R"([{"path":"~"},{"path":"~/src","readonly":true},{"path":"/home/me"}])"),
        "/home/me");
    ASSERT_EQ(f.size(), 2u);
    EXPECT_EQ(f[0], (SharedFolder{"/home/me", false}));
    EXPECT_EQ(f[1], (SharedFolder{"/home/me/src", true}));
    // An owner without a home folder: "~" is skipped, other folders stay.
    auto g = shared_folders_from_json(json::parse(R"([{"path":"~"},{"path":"/srv"}])"), "");
    ASSERT_EQ(g.size(), 1u);
    EXPECT_EQ(g[0].path, "/srv");
    EXPECT_THROW(shared_folders_from_json(json::parse(R"([{"path":"~"}])"), "/"), HostError);
}

TEST(SharedFolders, TextFormRoundTrips) {
    json v = parse_shared_folders_text("/home/me,/srv/data:ro,/opt/x:rw");
    EXPECT_EQ(v, json::parse(R"([{"path":"/home/me","readonly":false},
        {"path":"/srv/data","readonly":true},{"path":"/opt/x","readonly":false}])"));
    EXPECT_EQ(setting_text(v), "/home/me,/srv/data:ro,/opt/x");
    EXPECT_EQ(parse_shared_folders_text(""), json::array());
    EXPECT_EQ(parse_shared_folders_text(R"([{"path":"/a"}])"), json::parse(R"([{"path":"/a"}])"));
    EXPECT_THROW(parse_shared_folders_text("[oops"), HostError);
}

TEST(SharedFolders, SettingsLayerValidatesAndDefaultsToHome) {
    TempDir dir;
    SettingsFiles files{dir / "user.json", dir / "admin.json"};
    auto s = LayeredSettings::load(files);
    EXPECT_EQ(s.get("shared_folders").value, json::parse(R"([{"path":"~","readonly":false}])"));
    s.set_user("shared_folders", parse_setting_text("shared_folders", "/srv/a,/srv/b:ro"));
    s.set_user("share_owner", "1234:5678");
    Settings e = LayeredSettings::load(files).effective();
    ASSERT_EQ(e.shared_folders.size(), 2u);
    EXPECT_EQ(e.shared_folders[1], (SharedFolder{"/srv/b", true}));
    EXPECT_EQ(e.share_owner.uid, 1234u);
    EXPECT_EQ(e.share_owner.gid, 5678u);
    EXPECT_THROW(s.set_user("shared_folders", parse_setting_text("shared_folders", "/etc")),
                 HostError);
    EXPECT_THROW(s.set_user("share_owner", "no-such-user-hopefully-xyz"), HostError);
    EXPECT_THROW(s.set_user("share_owner", "12:x"), HostError);
    // An admin can lock the list.
    dir.write("admin.json", R"({"shared_folders":[{"path":"/srv/a"}],"locked":["shared_folders"]})");
    auto locked = LayeredSettings::load(files);
    EXPECT_THROW(locked.set_user("shared_folders", json::array()), HostError);
    EXPECT_EQ(locked.effective().shared_folders.size(), 1u);
    // A bad file names the key.
    dir.write("user.json", R"({"shared_folders":"/srv"})");
    try {
        LayeredSettings::load(files);
        FAIL() << "a string list was accepted";
    } catch (const HostError& err) {
        EXPECT_NE(std::string(err.what()).find("shared_folders"), std::string::npos);
    }
}

TEST(SharedFolders, OwnerDefaultsToTheInvokingUser) {
    const ShareOwner o = resolve_share_owner("");
    if (::getuid() == 0 && std::getenv("SUDO_UID"))
        GTEST_SKIP() << "run through sudo";
    EXPECT_EQ(o.uid, ::getuid());
    EXPECT_EQ(o.gid, ::getgid());
    EXPECT_EQ(resolve_share_owner("root").uid, 0u);
}

TEST(SharedFolders, KernelCommandLineWordsAreOneWordEach) {
    std::vector<SharedFolder> f{{"/home/me", false}, {"/srv/my data,%x", true}};
    EXPECT_EQ(share_cmdline(f),
              " cordon.share=0,rw,/home/me cordon.share=1,ro,/srv/my%20data%2C%25x");
    EXPECT_EQ(percent_encode("/a-b_c.d~e"), "/a-b_c.d~e");
    EXPECT_EQ(share_tag(3, true), "cordon-share-3-on");
    EXPECT_LE(share_tag(15, false).size(), 36u);
}

TEST(SharedFolders, WrapperScriptsCarryTheMapsPerMode) {
    TempDir dir;
    write_virtiofs_wrappers(dir / "vfs", {{"/home/me", false}, {"/srv/ro", true}},
                            ShareOwner{1000, 1001, "/home/me"}, "/opt/cordon it's/cordon-virtiofsd");
    const std::string off = slurp(virtiofs_wrapper_path(dir / "vfs", 0, false));
    const std::string on = slurp(virtiofs_wrapper_path(dir / "vfs", 0, true));
    const std::string ro = slurp(virtiofs_wrapper_path(dir / "vfs", 1, true));
    EXPECT_NE(off.find("--uid-map 0:1000:1 --gid-map 0:1001:1 --virtiofsd /usr/lib/qemu/virtiofsd -- \"$@\""),
              std::string::npos)
        << off;
    EXPECT_NE(on.find("--uid-map 0:65534:1,100000:1000:1 --gid-map 0:65534:1,100000:1001:1"),
              std::string::npos)
        << on;
    EXPECT_EQ(on.find("--read-only"), std::string::npos);
    EXPECT_NE(ro.find("--read-only"), std::string::npos);
    EXPECT_NE(off.find("exec '/opt/cordon it'\\''s/cordon-virtiofsd'"), std::string::npos) << off;
    struct stat st {};
    ASSERT_EQ(::stat(virtiofs_wrapper_path(dir / "vfs", 0, false).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0755u);
}

TEST(DomainXmlShares, NoSharesMeansNoSharedMemoryAndTheOldFingerprint) {
    DomainSpec s = base_spec();
    const std::string before = domain_fingerprint(s);
    int n = -1;
    xpath(domain_xml(s), "/domain/memoryBacking", &n);
    EXPECT_EQ(n, 0);
    xpath(domain_xml(s), "/domain/devices/filesystem", &n);
    EXPECT_EQ(n, 0);
    s.filesystems.push_back({"cordon-share-0-on", "/home/me", "/s/virtiofsd-0-on"});
    EXPECT_NE(domain_fingerprint(s), before);
    DomainSpec t = s;
    t.filesystems[0].source = "/home/other";
    EXPECT_NE(domain_fingerprint(t), domain_fingerprint(s));
}

TEST(DomainXmlShares, FilesystemsAreVirtiofsWithSharedMemfdMemory) {
    DomainSpec s = base_spec();
    s.filesystems.push_back({"cordon-share-0-off", "/home/me & you", "/s/virtiofsd-0-off"});
    s.filesystems.push_back({"cordon-share-0-on", "/home/me & you", "/s/virtiofsd-0-on"});
    const std::string xml = domain_xml(s);
    EXPECT_EQ(xpath(xml, "/domain/memoryBacking/source/@type"), "memfd");
    EXPECT_EQ(xpath(xml, "/domain/memoryBacking/access/@mode"), "shared");
    int n = 0;
    xpath(xml, "/domain/devices/filesystem", &n);
    EXPECT_EQ(n, 2);
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[1]/@type"), "mount");
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[1]/@accessmode"), "passthrough");
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[1]/driver/@type"), "virtiofs");
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[1]/binary/@path"), "/s/virtiofsd-0-off");
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[1]/source/@dir"), "/home/me & you");
    EXPECT_EQ(xpath(xml, "/domain/devices/filesystem[2]/target/@dir"), "cordon-share-0-on");
}

TEST(DomainXmlShares, ABadTagIsRefused) {
    DomainSpec s = base_spec();
    s.filesystems.push_back({std::string(37, 't'), "/a", "/b"});
    EXPECT_THROW(domain_xml(s), cordon::Error);
    s.filesystems[0].tag = "";
    EXPECT_THROW(domain_xml(s), cordon::Error);
}

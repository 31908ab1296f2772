// The generated domain XML, parsed back with libxml2 and checked with XPath.
#include "cordon/host/domain_xml.hpp"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include <memory>

#include "cordon/error.hpp"

using namespace cordon::host;

namespace {

struct Doc {
    explicit Doc(const std::string& xml)
        : doc(xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "domain.xml", nullptr,
                            XML_PARSE_NONET),
              xmlFreeDoc) {
        if (doc)
            ctx.reset(xmlXPathNewContext(doc.get()));
    }
    // The text of the first node the XPath selects (attribute or element), or "<none>".
    std::string get(const std::string& xpath) const {
        std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> r(
            xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(xpath.c_str()), ctx.get()),
            xmlXPathFreeObject);
        if (!r || !r->nodesetval || r->nodesetval->nodeNr == 0)
            return "<none>";
        xmlChar* s = xmlNodeGetContent(r->nodesetval->nodeTab[0]);
        std::string out = s ? reinterpret_cast<const char*>(s) : "";
        xmlFree(s);
        return out;
    }
    int count(const std::string& xpath) const {
        std::unique_ptr<xmlXPathObject, decltype(&xmlXPathFreeObject)> r(
            xmlXPathEvalExpression(reinterpret_cast<const xmlChar*>(xpath.c_str()), ctx.get()),
            xmlXPathFreeObject);
        return r && r->nodesetval ? r->nodesetval->nodeNr : 0;
    }
    std::unique_ptr<xmlDoc, decltype(&xmlFreeDoc)> doc;
    struct CtxFree {
        void operator()(xmlXPathContextPtr c) const { xmlXPathFreeContext(c); }
    };
    std::unique_ptr<xmlXPathContext, CtxFree> ctx;
};

DomainSpec spec() {
    DomainSpec s;
    s.name = "cordon";
    s.vcpus = 3;
    s.memory_mib = 1536;
    s.kernel = "/img/vmlinuz";
    s.initrd = "/img/initrd.img";
    s.cmdline = "console=ttyS0 quiet";
    s.data_disk = "/var/lib/cordon/cordon/data.qcow2";
    s.channel_socket = "/run/cordon/cordon/channel.sock";
    s.console_log = "/var/lib/cordon/cordon/console.log";
    return s;
}

}  // namespace

TEST(DomainXml, TcgDomainHasEveryDevice) {
    Doc d(domain_xml(spec()));
    ASSERT_TRUE(d.doc);
    EXPECT_EQ(d.get("/domain/@type"), "qemu");
    EXPECT_EQ(d.get("/domain/name"), "cordon");
    EXPECT_EQ(d.get("/domain/memory"), "1536");
    EXPECT_EQ(d.get("/domain/memory/@unit"), "MiB");
    EXPECT_EQ(d.get("/domain/vcpu"), "3");
    EXPECT_EQ(d.get("/domain/os/type"), "hvm");
    EXPECT_EQ(d.get("/domain/os/kernel"), "/img/vmlinuz");
    EXPECT_EQ(d.get("/domain/os/initrd"), "/img/initrd.img");
    EXPECT_EQ(d.get("/domain/os/cmdline"), "console=ttyS0 quiet");
    EXPECT_EQ(d.count("/domain/features/acpi"), 1);
    EXPECT_EQ(d.count("/domain/cpu"), 0) << "TCG uses QEMU's default CPU";
    EXPECT_EQ(d.get("/domain/on_poweroff"), "destroy");
    // Without a rootfs the data disk is the only disk, vda.
    EXPECT_EQ(d.count("/domain/devices/disk"), 1);
    EXPECT_EQ(d.get("/domain/devices/disk/source/@file"), "/var/lib/cordon/cordon/data.qcow2");
    EXPECT_EQ(d.get("/domain/devices/disk/driver/@type"), "qcow2");
    EXPECT_EQ(d.get("/domain/devices/disk/target/@bus"), "virtio");
    EXPECT_EQ(d.get("/domain/devices/disk/target/@dev"), "vda");
    EXPECT_EQ(d.get("/domain/devices/disk/serial"), "cordon-data");
    EXPECT_EQ(d.count("/domain/devices/disk/readonly"), 0);
    EXPECT_EQ(d.get("/domain/devices/channel/@type"), "unix");
    EXPECT_EQ(d.get("/domain/devices/channel/source/@mode"), "bind");
    EXPECT_EQ(d.get("/domain/devices/channel/source/@path"), "/run/cordon/cordon/channel.sock");
    EXPECT_EQ(d.get("/domain/devices/channel/target/@type"), "virtio");
    EXPECT_EQ(d.get("/domain/devices/channel/target/@name"), "org.cordon.channel.0");
    EXPECT_EQ(d.get("/domain/devices/serial/@type"), "file");
    EXPECT_EQ(d.get("/domain/devices/serial/source/@path"), "/var/lib/cordon/cordon/console.log");
    EXPECT_EQ(d.get("/domain/devices/interface/@type"), "user");
    EXPECT_EQ(d.get("/domain/devices/interface/model/@type"), "virtio");
    EXPECT_EQ(d.get("/domain/devices/memballoon/@model"), "virtio");
    EXPECT_EQ(d.get("/domain/devices/memballoon/@freePageReporting"), "on");
    EXPECT_EQ(d.count("/domain/uuid"), 0);
}

TEST(DomainXml, KvmDomainPassesTheHostCpuThrough) {
    DomainSpec s = spec();
    s.kvm = true;
    Doc d(domain_xml(s));
    EXPECT_EQ(d.get("/domain/@type"), "kvm");
    EXPECT_EQ(d.get("/domain/cpu/@mode"), "host-passthrough");
}

TEST(DomainXml, RootfsIsAReadOnlyFirstDisk) {
    DomainSpec s = spec();
    s.rootfs = "/img/rootfs.img";
    Doc d(domain_xml(s));
    ASSERT_EQ(d.count("/domain/devices/disk"), 2);
    EXPECT_EQ(d.get("/domain/devices/disk[serial='cordon-root']/source/@file"), "/img/rootfs.img");
    EXPECT_EQ(d.get("/domain/devices/disk[serial='cordon-root']/driver/@type"), "raw");
    EXPECT_EQ(d.get("/domain/devices/disk[serial='cordon-root']/target/@dev"), "vda");
    EXPECT_EQ(d.count("/domain/devices/disk[serial='cordon-root']/readonly"), 1);
    EXPECT_EQ(d.get("/domain/devices/disk[serial='cordon-data']/target/@dev"), "vdb");
    EXPECT_EQ(d.count("/domain/devices/disk[serial='cordon-data']/readonly"), 0);
}

TEST(DomainXml, SpecialCharactersAreEscapedNotInjected) {
    DomainSpec s = spec();
    s.cmdline = "a=<b> & c=\"d\" </cmdline><devices/>";
    s.kernel = "/img/it's & <odd>";
    const std::string xml = domain_xml(s);
    Doc d(xml);
    ASSERT_TRUE(d.doc) << xml;
    EXPECT_EQ(d.get("/domain/os/cmdline"), s.cmdline);
    EXPECT_EQ(d.get("/domain/os/kernel"), s.kernel.string());
    EXPECT_EQ(d.count("/domain/devices"), 1);
}

TEST(DomainXml, UuidIsKeptWhenGiven) {
    DomainSpec s = spec();
    s.uuid = "a2af9b46-1916-485f-93f1-ccaf450f258e";
    Doc d(domain_xml(s));
    EXPECT_EQ(d.get("/domain/uuid"), s.uuid);
}

TEST(DomainXml, FingerprintIsStoredAndFollowsTheSpec) {
    DomainSpec s = spec();
    const std::string xml = domain_xml(s);
    EXPECT_EQ(fingerprint_in_xml(xml), domain_fingerprint(s));
    EXPECT_EQ(fingerprint_in_xml(xml).size(), 16u);
    // libvirt writes the metadata back with other quoting; the fingerprint still reads.
    EXPECT_EQ(fingerprint_in_xml("<cordon:vm fingerprint='0123456789abcdef'/>"),
              "0123456789abcdef");
    EXPECT_EQ(fingerprint_in_xml("<domain/>"), "");
    DomainSpec uuid_only = s;
    uuid_only.uuid = "a2af9b46-1916-485f-93f1-ccaf450f258e";
    EXPECT_EQ(domain_fingerprint(uuid_only), domain_fingerprint(s));
    for (auto change : std::vector<std::function<void(DomainSpec&)>>{
             [](DomainSpec& x) { x.vcpus = 4; }, [](DomainSpec& x) { x.memory_mib = 4096; },
             [](DomainSpec& x) { x.kvm = true; }, [](DomainSpec& x) { x.cmdline += " debug"; },
             [](DomainSpec& x) { x.rootfs = "/img/r"; },
             [](DomainSpec& x) { x.kernel = "/img/other"; }}) {
        DomainSpec c = s;
        change(c);
        EXPECT_NE(domain_fingerprint(c), domain_fingerprint(s));
    }
}

namespace {

TEST(DomainXml, FwCfgEntriesAreASysinfoNamingTheirFile) {
    DomainSpec s = spec();
    EXPECT_EQ(Doc(domain_xml(s)).count("/domain/sysinfo"), 0);  // none asked: none written
    s.fw_cfg.push_back({kAdminFwCfgName, "/var/lib/cordon/x/admin'<devices/>&.json"});
    const std::string xml = domain_xml(s);
    Doc d(xml);
    ASSERT_TRUE(d.doc) << xml;
    EXPECT_EQ(d.count("/domain/sysinfo[@type='fwcfg']/entry"), 1);
    EXPECT_EQ(d.get("/domain/sysinfo/entry/@name"), "opt/org.cordon/admin");
    EXPECT_EQ(d.get("/domain/sysinfo/entry/@file"), s.fw_cfg[0].file.string());  // escaped
    // No inline value: libvirt 9.0 hands an inline value to QEMU XML-escaped, with its
    // commas unescaped, and QEMU refuses the command line.
    EXPECT_EQ(d.get("/domain/sysinfo/entry"), "");
    EXPECT_EQ(d.count("/domain/devices"), 1);
}

TEST(DomainXml, FwCfgNamesOutsideOptOrMalformedAreRefused) {
    for (const std::string& name :
         std::vector<std::string>{"etc/boot-menu-wait", "opt/a,b", "opt/a=b", "opt/a b",
                                  "opt/" + std::string(52, 'x'), ""}) {
        DomainSpec s = spec();
        s.fw_cfg.push_back({name, "/state/admin.json"});
        EXPECT_THROW(domain_xml(s), cordon::Error) << name;
    }
    for (const char* file : {"", "relative/admin.json", "/state,x/admin.json"}) {
        DomainSpec s = spec();
        s.fw_cfg.push_back({kAdminFwCfgName, file});
        EXPECT_THROW(domain_xml(s), cordon::Error) << file;  // QEMU splits options at ','
    }
    DomainSpec longest = spec();
    longest.fw_cfg.push_back({"opt/" + std::string(51, 'x'), "/state/admin.json"});  // 55 bytes
    EXPECT_NO_THROW(domain_xml(longest));
}

TEST(DomainXml, TheFingerprintFollowsTheFwCfgFile) {
    DomainSpec a = spec();
    a.fw_cfg.push_back({kAdminFwCfgName, "/state/a/admin.json"});
    DomainSpec b = a;
    b.fw_cfg[0].file = "/state/b/admin.json";
    EXPECT_NE(domain_fingerprint(a), domain_fingerprint(b));
    EXPECT_NE(domain_fingerprint(a), domain_fingerprint(spec()));
}

}  // namespace

#include "cordon/host/domain_xml.hpp"

#include <libxml/xmlwriter.h>

#include <cstdint>
#include <cstdio>
#include <memory>

#include "cordon/error.hpp"

namespace cordon::host {
namespace {

constexpr const char* kCordonXmlns = "https://cordon.dev/xmlns/vm/1";

struct BufferFree {
    void operator()(xmlBufferPtr b) const noexcept { xmlBufferFree(b); }
};
struct WriterFree {
    void operator()(xmlTextWriterPtr w) const noexcept { xmlFreeTextWriter(w); }
};

const xmlChar* x(const char* s) {
    return reinterpret_cast<const xmlChar*>(s);
}

// A thin checked layer over xmlTextWriter: every call that fails throws.
class Writer {
  public:
    explicit Writer(xmlTextWriterPtr w) : w_(w) {}
    void start(const char* name) { check(xmlTextWriterStartElement(w_, x(name)), name); }
    void start_ns(const char* prefix, const char* name, const char* uri) {
        check(xmlTextWriterStartElementNS(w_, x(prefix), x(name), x(uri)), name);
    }
    void end() { check(xmlTextWriterEndElement(w_), "end"); }
    void attr(const char* name, const std::string& value) {
        check(xmlTextWriterWriteAttribute(w_, x(name), x(value.c_str())), name);
    }
    void text(const std::string& value) {
        check(xmlTextWriterWriteString(w_, x(value.c_str())), "text");
    }
    // <name>value</name>
    void element(const char* name, const std::string& value) {
        start(name);
        text(value);
        end();
    }
    // <name a="v" .../>
    void empty(const char* name, std::initializer_list<std::pair<const char*, std::string>> attrs) {
        start(name);
        for (const auto& [k, v] : attrs) attr(k, v);
        end();
    }

  private:
    static void check(int rc, const char* what) {
        if (rc < 0)
            throw cordon::Error(std::string("libxml2 failed to write the domain XML at ") + what);
    }
    xmlTextWriterPtr w_;
};

void disk(Writer& w, const std::string& format, const std::filesystem::path& path, const char* dev,
          const char* serial, bool readonly) {
    w.start("disk");
    w.attr("type", "file");
    w.attr("device", "disk");
    w.empty("driver",
            {{"name", "qemu"}, {"type", format}, {"cache", readonly ? "none" : "writeback"}});
    w.empty("source", {{"file", path.string()}});
    w.empty("target", {{"dev", dev}, {"bus", "virtio"}});
    w.element("serial", serial);
    if (readonly)
        w.empty("readonly", {});
    w.end();
}

// <sysinfo type='fwcfg'><entry name='opt/...' file='...'/></sysinfo> (libvirt 6.5+).
void fw_cfg(Writer& w, const std::vector<FwCfgEntry>& entries) {
    if (entries.empty())
        return;
    w.start("sysinfo");
    w.attr("type", "fwcfg");
    for (const auto& e : entries) {
        // QEMU keeps 56 bytes per name (with the NUL); names outside opt/ are QEMU's own.
        if (!e.name.starts_with("opt/") || e.name.size() > 55 ||
            e.name.find_first_of(",= \n") != std::string::npos)
            throw cordon::Error(
                "a fw_cfg name must start with opt/, be at most 55 bytes and "
                "hold no ',', '=', space or newline",
                e.name);
        if (!e.file.is_absolute() || e.file.string().find(',') != std::string::npos)
            throw cordon::Error("a fw_cfg file must be an absolute path without ','",
                                e.file.string(), "keep the VM's state folder free of commas");
        w.start("entry");
        w.attr("name", e.name);
        w.attr("file", e.file.string());
        w.end();
    }
    w.end();  // sysinfo
}

}  // namespace

std::string domain_fingerprint(const DomainSpec& s) {
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const std::string& v) {
        for (unsigned char c : v) {
            h ^= c;
            h *= 1099511628211ull;
        }
        h ^= 0xff;  // field separator
        h *= 1099511628211ull;
    };
    mix(s.name);
    mix(s.kvm ? "kvm" : "qemu");
    mix(std::to_string(s.vcpus));
    mix(std::to_string(s.memory_mib));
    mix(s.kernel.string());
    mix(s.initrd.string());
    mix(s.cmdline);
    mix(s.rootfs ? s.rootfs->string() : std::string("-"));
    mix(s.rootfs_format);
    mix(s.data_disk.string());
    mix(s.channel_socket.string());
    mix(s.console_log.string());
    for (const auto& f : s.filesystems) {  // absent for a VM without shares: same fingerprint
        mix("fs");
        mix(f.tag);
        mix(f.source.string());
        mix(f.binary.string());
    }
    for (const auto& e : s.fw_cfg) {  // absent: same fingerprint as before fw_cfg existed
        mix("fw_cfg");
        mix(e.name);
        mix(e.file.string());  // QEMU reads the content at each start: no redefine for it
    }
    mix("layout-2");  // bump when domain_xml() writes different XML for the same spec
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

std::string fingerprint_in_xml(const std::string& xml) {
    const std::string key = "fingerprint=";
    auto pos = xml.find(key);
    if (pos == std::string::npos || pos + key.size() + 18 > xml.size())
        return {};
    return xml.substr(pos + key.size() + 1, 16);
}

std::string domain_xml(const DomainSpec& s) {
    std::unique_ptr<xmlBuffer, BufferFree> buf(xmlBufferCreate());
    if (!buf)
        throw cordon::Error("libxml2 cannot allocate a buffer for the domain XML");
    std::unique_ptr<xmlTextWriter, WriterFree> writer(xmlNewTextWriterMemory(buf.get(), 0));
    if (!writer)
        throw cordon::Error("libxml2 cannot create an XML writer");
    xmlTextWriterSetIndent(writer.get(), 1);
    xmlTextWriterSetIndentString(writer.get(), x("  "));
    Writer w(writer.get());

    w.start("domain");
    w.attr("type", s.kvm ? "kvm" : "qemu");
    w.element("name", s.name);
    if (!s.uuid.empty())
        w.element("uuid", s.uuid);
    w.start("metadata");
    // Marks the domain as Cordon's, so vmctl never touches a foreign domain of the same name.
    w.start_ns("cordon", "vm", kCordonXmlns);
    w.attr("version", "1");
    w.attr("fingerprint", domain_fingerprint(s));
    w.end();
    w.end();  // metadata
    w.start("memory");
    w.attr("unit", "MiB");
    w.text(std::to_string(s.memory_mib));
    w.end();
    w.element("vcpu", std::to_string(s.vcpus));
    if (!s.filesystems.empty()) {
        // vhost-user (virtiofsd) maps guest memory: it must be a shareable memfd.
        w.start("memoryBacking");
        w.empty("source", {{"type", "memfd"}});
        w.empty("access", {{"mode", "shared"}});
        w.end();
    }

    w.start("os");
    w.start("type");
    w.attr("arch", "x86_64");
    w.attr("machine", "q35");
    w.text("hvm");
    w.end();
    w.element("kernel", s.kernel.string());
    w.element("initrd", s.initrd.string());
    w.element("cmdline", s.cmdline);
    w.end();  // os
    fw_cfg(w, s.fw_cfg);

    w.start("features");
    w.empty("acpi", {});
    w.empty("apic", {});
    w.end();
    if (s.kvm)
        w.empty("cpu", {{"mode", "host-passthrough"}});
    w.empty("clock", {{"offset", "utc"}});
    w.element("on_poweroff", "destroy");
    w.element("on_reboot", "restart");
    w.element("on_crash", "destroy");

    w.start("devices");
    if (s.rootfs)
        disk(w, s.rootfs_format, *s.rootfs, "vda", kRootDiskSerial, true);
    disk(w, "qcow2", s.data_disk, s.rootfs ? "vdb" : "vda", kDataDiskSerial, false);

    for (const auto& f : s.filesystems) {
        if (f.tag.empty() || f.tag.size() > 36)
            throw cordon::Error("a virtiofs tag must be 1 to 36 bytes", f.tag);
        w.start("filesystem");
        w.attr("type", "mount");
        w.attr("accessmode", "passthrough");
        w.empty("driver", {{"type", "virtiofs"}, {"queue", "1024"}});
        if (!f.binary.empty()) {
            w.start("binary");
            w.attr("path", f.binary.string());
            w.attr("xattr", "off");
            w.end();
        }
        w.empty("source", {{"dir", f.source.string()}});
        w.empty("target", {{"dir", f.tag}});
        w.end();
    }

    w.start("channel");
    w.attr("type", "unix");
    w.empty("source", {{"mode", "bind"}, {"path", s.channel_socket.string()}});
    w.empty("target", {{"type", "virtio"}, {"name", kChannelName}});
    w.end();

    w.start("serial");
    w.attr("type", "file");
    w.empty("source", {{"path", s.console_log.string()}});
    w.empty("target", {{"port", "0"}});
    w.end();

    w.start("interface");
    w.attr("type", "user");
    w.empty("model", {{"type", "virtio"}});
    w.end();

    w.start("rng");
    w.attr("model", "virtio");
    w.start("backend");
    w.attr("model", "random");
    w.text("/dev/urandom");
    w.end();
    w.end();

    // Free page reporting: the guest tells QEMU which pages it freed and QEMU gives them
    // back to the host, so the VM's RSS falls after a container that used a lot exits.
    w.empty("memballoon", {{"model", "virtio"}, {"freePageReporting", "on"}});
    w.end();  // devices
    w.end();  // domain
    if (xmlTextWriterEndDocument(writer.get()) < 0)
        throw cordon::Error("libxml2 cannot finish the domain XML");
    writer.reset();  // flushes into buf
    return std::string(reinterpret_cast<const char*>(xmlBufferContent(buf.get())),
                       static_cast<size_t>(xmlBufferLength(buf.get())));
}

}  // namespace cordon::host

// The policy table: named attacks and legitimate uses for each rule, through the
// policy engine exactly as the proxy drives it (check_head, then check_body).
#include <gtest/gtest.h>

#include <filesystem>

#include "cordon/proxy/gojson.hpp"
#include "fs_fixture.hpp"

namespace {

using cordon::policy::Decision;
using cordon::policy::Policy;
using cordon::policy::RequestInfo;
using cordon::policy::Role;
using cordon::policy::Verdict;

struct Case {
    const char* name;
    const char* method;
    const char* target;
    const char* body;  // nullptr: no body
    Verdict want;
    const char* rule;  // expected rule (prefix) for denials; nullptr = don't care
    Role role = Role::host;
    const char* content_type = "application/json";
};

constexpr Verdict A = Verdict::allow;
constexpr Verdict D = Verdict::deny;

const std::string kAllowedId = "sha256:" + std::string(64, 'a');
const std::string kEvilId = "sha256:" + std::string(64, 'b');

// A body like the one `docker run` (CLI 28, API 1.41) sends, with a HostConfig override.
std::string cli_body(const std::string& hostconfig_extra) {
    return R"({"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,)"
           R"("AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,)"
           R"("Cmd":["sh"],"Image":"alpine","Volumes":{},"WorkingDir":"","Entrypoint":null,)"
           R"("OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"",)"
           R"("LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},)"
           R"("RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,)"
           R"("VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[24,80],"CapAdd":null,"CapDrop":null,)"
           R"("CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,)"
           R"("IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,)"
           R"("PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"",)"
           R"("UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,)"
           R"("CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"Devices":[],)"
           R"("DeviceCgroupRules":null,"DeviceRequests":null,"MemorySwappiness":null,"OomKillDisable":null,)"
           R"("PidsLimit":null,"Ulimits":[],"MaskedPaths":null,"ReadonlyPaths":null,"Annotations":null)" +
           hostconfig_extra + R"(},"NetworkingConfig":{"EndpointsConfig":{}}})";
}

const std::string kCli = cli_body("");
const std::string kCliPrivileged = cli_body(R"(,"Privileged":true)");

std::string hc(const std::string& inner, const std::string& image = "alpine") {
    return R"({"Image":")" + image + R"(","HostConfig":{)" + inner + "}}";
}

struct Row {
    Case c;
    std::string body;  // owns dynamic bodies
};

std::vector<Row> table() {
    std::vector<Row> t;
    auto add = [&](Case c, std::string body = {}) {
        if (c.body)
            body = c.body;
        t.push_back({c, std::move(body)});
    };
    const char* create = "/v1.41/containers/create";
    // ---------------------------------------------------------------- legitimate uses
    add({"ping", "GET", "/_ping", nullptr, A, nullptr});
    add({"ping_head_versioned", "HEAD", "/v1.41/_ping", nullptr, A, nullptr});
    add({"version", "GET", "/v1.41/version", nullptr, A, nullptr});
    add({"create_minimal", "POST", create, R"({"Image":"alpine"})", A, nullptr});
    add({"create_cli_body", "POST", create, nullptr, A, nullptr}, kCli);
    add({"create_bind_home", "POST", create, nullptr, A, nullptr},
        hc(R"("Binds":["/home/user/project:/src"])"));
    add({"create_bind_tmp_ro", "POST", create, nullptr, A, nullptr},
        hc(R"("Binds":["/tmp/ok:/data:ro,rslave"])"));
    add({"create_bind_missing_dir", "POST", create, nullptr, A, nullptr},
        hc(R"("Binds":["/srv/new/dir:/x"])"));
    add({"create_named_volume", "POST", create, nullptr, A, nullptr},
        hc(R"("Binds":["data:/data","/anon"])"));
    add({"create_mount_bind_home", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"bind","Source":"/home/user/project","Target":"/src","ReadOnly":true}])"));
    add({"create_mount_tmpfs", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1048576}}])"));
    add({"create_mount_volume_plain", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"volume","Source":"cache","Target":"/c","VolumeOptions":{"NoCopy":true}}])"));
    add({"capadd_default_cap", "POST", create, nullptr, A, nullptr},
        hc(R"("CapAdd":["NET_BIND_SERVICE"])"));
    add({"capadd_default_lowercase_prefixed", "POST", create, nullptr, A, nullptr},
        hc(R"("CapAdd":["cap_chown"])"));
    add({"capdrop_all", "POST", create, nullptr, A, nullptr}, hc(R"("CapDrop":["ALL"])"));
    add({"network_bridge", "POST", create, nullptr, A, nullptr}, hc(R"("NetworkMode":"bridge")"));
    add({"network_user_defined", "POST", create, nullptr, A, nullptr},
        R"({"Image":"alpine","HostConfig":{"NetworkMode":"mynet"},"NetworkingConfig":{"EndpointsConfig":{"mynet":{"Aliases":["db"]}}}})");
    add({"network_container_join", "POST", create, nullptr, A, nullptr},
        hc(R"("NetworkMode":"container:abc123")"));
    add({"ipc_shareable", "POST", create, nullptr, A, nullptr}, hc(R"("IpcMode":"shareable")"));
    add({"pid_container_join", "POST", create, nullptr, A, nullptr},
        hc(R"("PidMode":"container:abc123")"));
    add({"secopt_no_new_privileges", "POST", create, nullptr, A, nullptr},
        hc(R"("SecurityOpt":["no-new-privileges:true"])"));
    add({"sysctl_net", "POST", create, nullptr, A, nullptr},
        hc(R"("Sysctls":{"net.ipv4.ip_unprivileged_port_start":"0"})"));
    add({"sysctl_ipc", "POST", create, nullptr, A, nullptr},
        hc(R"("Sysctls":{"kernel.shmmax":"1000000"})"));
    add({"masked_paths_superset", "POST", create, nullptr, A, nullptr},
        hc(R"("MaskedPaths":["/proc/asound","/proc/acpi","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list","/proc/timer_stats","/proc/sched_debug","/proc/scsi","/sys/firmware","/proc/extra"])"));
    add({"log_json_file_opts", "POST", create, nullptr, A, nullptr},
        hc(R"("LogConfig":{"Type":"json-file","Config":{"max-size":"10m"}})"));
    add({"unknown_field_zero_is_ignored", "POST", create, nullptr, A, nullptr},
        hc(R"("FutureThing":null,"Other":[0,0])"));
    add({"create_empty_body_is_empty_object", "POST", create, "", A, nullptr});
    add({"create_null_body", "POST", create, "null", A, nullptr});
    add({"exec_plain", "POST", "/v1.41/containers/c1/exec",
         R"({"Cmd":["ls"],"AttachStdout":true,"User":"root"})", A, nullptr});
    add({"exec_start", "POST", "/v1.41/exec/e1/start", R"({"Detach":false,"Tty":true})", A,
         nullptr});
    add({"volume_plain", "POST", "/v1.41/volumes/create",
         R"({"Name":"v","Driver":"local","Labels":{"a":"b"}})", A, nullptr});
    add({"volume_tmpfs", "POST", "/v1.41/volumes/create",
         R"({"Name":"t","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=100m"}})", A,
         nullptr});
    add({"volume_bind_home", "POST", "/v1.41/volumes/create",
         R"({"Name":"h","DriverOpts":{"type":"none","o":"bind","device":"/home/user/project"}})", A,
         nullptr});
    add({"network_create_bridge", "POST", "/v1.41/networks/create",
         R"({"Name":"n","Driver":"bridge","Options":{"com.docker.network.driver.mtu":"1400"},"IPAM":{"Config":[{"Subnet":"10.9.0.0/24"}]}})",
         A, nullptr});
    add({"network_connect_user", "POST", "/v1.41/networks/mynet/connect", R"({"Container":"c1"})",
         A, nullptr});
    add({"update_memory", "POST", "/v1.41/containers/c1/update",
         R"({"Memory":104857600,"RestartPolicy":{"Name":"always"}})", A, nullptr});
    add({"start_no_body", "POST", "/v1.41/containers/c1/start", nullptr, A, nullptr});
    add({"start_empty_object", "POST", "/v1.41/containers/c1/start", "{}", A, nullptr});
    add({"build_plain", "POST",
         "/v1.41/build?t=app%3A1&buildargs=%7B%7D&networkmode=default&version=2&session=abc",
         nullptr, A, nullptr});
    add({"build_session", "POST", "/session", nullptr, A, nullptr});
    add({"image_load", "POST", "/v1.41/images/load?quiet=1", nullptr, A, nullptr});
    add({"image_inspect_slashes", "GET", "/v1.41/images/ghcr.io/org/app:1/json", nullptr, A,
         nullptr});
    add({"logs", "GET", "/v1.41/containers/c1/logs?follow=1&stdout=1", nullptr, A, nullptr});
    add({"attach", "POST", "/v1.41/containers/c1/attach?stream=1&stdin=1", nullptr, A, nullptr});
    add({"archive_put", "PUT", "/v1.41/containers/c1/archive?path=%2Ftmp", nullptr, A, nullptr});
    // docker cp: dockerd mounts the container's binds and bind volumes itself, as VM root,
    // following symlinks a container may have swapped in since the check.
    add({"archive_named_volumes", "GET", "/v1.41/containers/with-volumes/archive?path=%2Fd",
         nullptr, A, nullptr});
    add({"archive_no_such_container", "HEAD", "/v1.41/containers/gone/archive?path=%2F",
         nullptr, A, nullptr});
    add({"archive_bind", "GET", "/v1.41/containers/with-bind/archive?path=%2Fsrc", nullptr, D,
         "container.archive"});
    add({"archive_put_bind", "PUT", "/v1.41/containers/with-bind/archive?path=%2Fsrc", nullptr,
         D, "container.archive"});
    add({"archive_stat_bind", "HEAD", "/v1.41/containers/with-bind/archive?path=%2Fsrc", nullptr,
         D, "container.archive"});
    add({"archive_bind_volume", "GET", "/v1.41/containers/with-bind-volume/archive?path=%2Fv",
         nullptr, D, "container.archive"});
    add({"archive_legacy_volume", "GET",
         "/v1.41/containers/with-legacy-volume/archive?path=%2Fv", nullptr, D,
         "container.archive"});
    add({"commit_plain", "POST", "/v1.41/commit?container=c1&repo=x", R"({"Cmd":["sh"]})", A,
         nullptr});
    add({"socket_mount_allowlisted_by_id", "POST", create, nullptr, A, nullptr},
        hc(R"("Binds":["/var/run/docker.sock:/var/run/docker.sock"])", "allowed:latest"));
    add({"socket_mount_allowlisted_by_digest", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"bind","Source":"/var/run/docker.sock","Target":"/var/run/docker.sock"}])",
           "compose:v2"));
    // ---------------------------------------------------------------- volumes (allowlist)
    const char* vc = "/v1.41/volumes/create";
    add({"volume_tmpfs_size_uid", "POST", vc,
         R"({"Name":"t","Driver":"local","DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=100m,uid=1000,gid=1000,mode=0750,noexec,nosuid,nodev"}})",
         A, nullptr});
    add({"volume_size_only", "POST", vc, R"({"Name":"q","DriverOpts":{"size":"10G"}})", A,
         nullptr});
    add({"volume_bind_ro_rslave", "POST", vc,
         R"({"Name":"h","DriverOpts":{"type":"none","o":"bind,ro,rslave","device":"/home/user/project"}})",
         A, nullptr});
    add({"volume_nfs_lan", "POST", vc,
         R"({"Name":"n","DriverOpts":{"type":"nfs","o":"addr=192.168.1.20,rw,nfsvers=4,soft","device":":/export/data"}})",
         A, nullptr});
    add({"volume_nfs4_lan_ipv6", "POST", vc,
         R"({"Name":"n6","DriverOpts":{"type":"nfs4","o":"addr=2001:db8::20","device":"nas:/export"}})",
         A, nullptr});
    add({"volume_cifs_lan", "POST", vc,
         R"({"Name":"c","DriverOpts":{"type":"cifs","o":"addr=192.168.1.30,username=u,password=p,vers=3.0,uid=1000","device":"//192.168.1.30/share"}})",
         A, nullptr});
    add({"create_mount_volume_inline_tmpfs", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"volume","Source":"t","Target":"/t","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs","o":"size=10m"}}}}])"));
    add({"create_compose_named_volumes", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"volume","Source":"pg","Target":"/var/lib/postgresql/data","VolumeOptions":{}},{"Type":"volume","Source":"scratch","Target":"/s"}],"Binds":["data:/data:rw"])"));
    add({"create_tmpfs_hostconfig", "POST", create, nullptr, A, nullptr},
        hc(R"("Tmpfs":{"/run":"rw,noexec,nosuid,size=65536k","/tmp":""})"));
    add({"create_mount_tmpfs_options", "POST", create, nullptr, A, nullptr},
        hc(R"("Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1000,"Mode":1023}}])"));
    add({"volume_overlay_etc", "POST", vc,
         R"({"Name":"v","DriverOpts":{"type":"overlay","device":"overlay","o":"lowerdir=/etc:/data"}})",
         D, "volume.type"});
    add({"volume_proc", "POST", vc, R"({"DriverOpts":{"type":"proc","device":"proc"}})", D,
         "volume.type"});
    add({"volume_sysfs", "POST", vc, R"({"DriverOpts":{"type":"sysfs","device":"sysfs"}})", D,
         "volume.type"});
    add({"volume_devtmpfs", "POST", vc, R"({"DriverOpts":{"type":"devtmpfs","device":"devtmpfs"}})",
         D, "volume.type"});
    add({"volume_cgroup2", "POST", vc, R"({"DriverOpts":{"type":"cgroup2","device":"cgroup2"}})", D,
         "volume.type"});
    add({"volume_ext4_relative_device", "POST", vc,
         R"({"DriverOpts":{"type":"ext4","device":"../../../../../../dev/vdb"}})", D,
         "volume.type"});
    add({"volume_bind_relative_device", "POST", vc,
         R"({"DriverOpts":{"type":"none","o":"bind","device":"../../../etc"}})", D, "volume.bind"});
    add({"volume_tmpfs_bind_relative", "POST", vc,
         R"({"DriverOpts":{"type":"tmpfs","o":"bind","device":"../etc"}})", D, "volume.type"});
    add({"volume_tmpfs_relative_device", "POST", vc,
         R"({"DriverOpts":{"type":"tmpfs","device":"../../dev/vdb"}})", D, "volume.device"});
    add({"volume_tmpfs_unknown_option", "POST", vc,
         R"({"DriverOpts":{"type":"tmpfs","device":"tmpfs","o":"size=1m,remount"}})", D,
         "volume.option"});
    add({"volume_bind_rshared", "POST", vc,
         R"({"DriverOpts":{"type":"none","o":"bind,rshared","device":"/home/user/project"}})", D,
         "volume.propagation"});
    add({"volume_unknown_key", "POST", vc,
         R"({"DriverOpts":{"type":"tmpfs","device":"tmpfs","Type":"overlay"}})", D,
         "volume.option"});
    add({"volume_nfs_loopback", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"addr=127.0.0.1","device":":/"}})", D,
         "volume.address"});
    add({"volume_nfs_mapped_loopback", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"addr=::ffff:127.0.0.1","device":":/"}})", D,
         "volume.address"});
    add({"volume_nfs_uplink_host", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"addr=10.0.2.2","device":":/"}})", D,
         "volume.address"});
    add({"volume_nfs_hostname", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"addr=localhost","device":"localhost:/"}})", D,
         "volume.address"});
    add({"volume_nfs_no_addr", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"rw","device":"nas:/export"}})", D, "volume.address"});
    add({"volume_nfs_two_addrs", "POST", vc,
         R"({"DriverOpts":{"type":"nfs","o":"addr=192.168.1.20,addr=127.0.0.1","device":":/x"}})",
         D, "volume.option"});
    add({"volume_cifs_credentials_file", "POST", vc,
         R"({"DriverOpts":{"type":"cifs","o":"addr=192.168.1.30,credentials=/etc/shadow","device":"//192.168.1.30/s"}})",
         D, "volume.option"});
    add({"volume_cifs_krb5", "POST", vc,
         R"({"DriverOpts":{"type":"cifs","o":"addr=192.168.1.30,sec=krb5","device":"//192.168.1.30/s"}})",
         D, "volume.option"});
    add({"mount_inline_overlay", "POST", create, nullptr, D, "volume.type"},
        hc(R"("Mounts":[{"Type":"volume","Source":"v","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"overlay","device":"overlay","o":"lowerdir=/etc:/data"}}}}])"));
    add({"bind_existing_overlay_volume", "POST", create, nullptr, D, "volume.type"},
        hc(R"("Binds":["legacy-overlay:/x"])"));
    add({"mount_existing_bind_etc_volume", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Mounts":[{"Type":"volume","Source":"legacy-bind-etc","Target":"/x"}])"));
    add({"existing_plugin_volume", "POST", create, nullptr, D, "volume.driver"},
        hc(R"("Binds":["plugin-vol:/x"])"));
    add({"tmpfs_hostconfig_bind", "POST", create, nullptr, D, "tmpfs.option"},
        hc(R"("Tmpfs":{"/x":"bind,size=1m"})"));
    add({"tmpfs_hostconfig_dev_suid", "POST", create, nullptr, D, "tmpfs.option"},
        hc(R"("Tmpfs":{"/x":"dev,suid"})"));
    // ---------------------------------------------------------------- networks on VM addresses
    const char* nc = "/v1.41/networks/create";
    add({"network_create_own_subnet_gateway", "POST", nc,
         R"({"Name":"n","IPAM":{"Config":[{"Subnet":"172.30.0.0/16","IPRange":"172.30.5.0/24","Gateway":"172.30.0.1","AuxiliaryAddresses":{"r":"172.30.0.2"}}]}})",
         A, nullptr});
    add({"network_create_ipv6", "POST", nc,
         R"({"Name":"n6","EnableIPv6":true,"IPAM":{"Config":[{"Subnet":"fd00:dead:beef::/48"}]}})",
         A, nullptr});
    add({"network_uplink_subnet", "POST", nc,
         R"({"Name":"u","IPAM":{"Config":[{"Subnet":"10.0.2.0/24","Gateway":"10.0.2.2"}]}})", D,
         "network.subnet"});
    add({"network_supernet_of_uplink", "POST", nc,
         R"({"Name":"u","IPAM":{"Config":[{"Subnet":"10.0.0.0/8"}]}})", D, "network.subnet"});
    add({"network_loopback", "POST", nc,
         R"({"Name":"l","IPAM":{"Config":[{"Subnet":"127.0.0.0/16"}]}})", D, "network.subnet"});
    add({"network_link_local", "POST", nc,
         R"({"Name":"l","IPAM":{"Config":[{"Subnet":"169.254.0.0/24"}]}})", D, "network.subnet"});
    add({"network_gateway_uplink", "POST", nc,
         R"({"Name":"g","IPAM":{"Config":[{"Subnet":"172.31.0.0/16","Gateway":"10.0.2.15"}]}})", D,
         "network.subnet"});
    add({"network_aux_address_vm", "POST", nc,
         R"({"Name":"a","IPAM":{"Config":[{"Subnet":"172.31.0.0/16","AuxiliaryAddresses":{"h":"10.0.2.2"}}]}})",
         D, "network.subnet"});
    add({"network_iprange_ipv6_qemu", "POST", nc,
         R"({"Name":"r","IPAM":{"Config":[{"Subnet":"fec0::/48","IPRange":"fec0::/64"}]}})", D,
         "network.subnet"});
    add({"network_malformed_subnet", "POST", nc,
         R"({"Name":"m","IPAM":{"Config":[{"Subnet":"10.0.2.0/033"}]}})", D, "network.subnet"});
    add({"container_role_allowed_command", "GET", "/v1.41/containers/json", nullptr, A, nullptr,
         Role::container});

    // ---------------------------------------------------------------- privileged
    add({"privileged", "POST", create, nullptr, D, "privileged"}, hc(R"("Privileged":true)"));
    add({"privileged_cli_body", "POST", create, nullptr, D, "json.duplicate-key"}, kCliPrivileged);
    add({"privileged_lowercase_key", "POST", create, nullptr, D, "privileged"},
        hc(R"("privileged":true)"));
    add({"privileged_escaped_key", "POST", create, nullptr, D, "privileged"},
        hc(R"("Privil\u0065ged":true)"));
    add({"privileged_hostconfig_key_case", "POST", create,
         R"({"Image":"a","hostCONFIG":{"PRIVILEGED":true}})", D, "privileged"});
    add({"privileged_duplicate_fold_keys", "POST", create, nullptr, D, "json.duplicate-key"},
        hc(R"("Privileged":false,"privileged":true)"));
    add({"privileged_duplicate_hostconfig_merge", "POST", create,
         R"({"Image":"a","HostConfig":{"Privileged":true},"hostconfig":{"Binds":[]}})", D,
         "json.duplicate-key"});
    add({"privileged_exact_duplicate", "POST", create,
         R"({"Image":"a","HostConfig":{"Privileged":false,"Privileged":true}})", D,
         "json.duplicate-key"});
    add({"privileged_string_value", "POST", create, nullptr, D, "json.type"},
        hc(R"("Privileged":"true")"));
    add({"privileged_trailing_second_object", "POST", create,
         R"({"Image":"a"}{"HostConfig":{"Privileged":true}})", D, "json.syntax"});
    add({"privileged_encoded_path", "POST", "/v1.41/containers/%63reate", nullptr, D, "privileged"},
        hc(R"("Privileged":true)"));
    add({"privileged_exec", "POST", "/v1.41/containers/c1/exec",
         R"({"Cmd":["sh"],"Privileged":true})", D, "privileged-exec"});
    add({"privileged_exec_folded", "POST", "/v1.41/containers/c1/exec",
         R"({"Cmd":["sh"],"PRIVILEGED":true})", D, "privileged-exec"});
    // ---------------------------------------------------------------- namespaces
    add({"pid_host", "POST", create, nullptr, D, "namespace.pid"}, hc(R"("PidMode":"host")"));
    add({"ipc_host", "POST", create, nullptr, D, "namespace.ipc"}, hc(R"("IpcMode":"host")"));
    add({"uts_host", "POST", create, nullptr, D, "namespace.uts"}, hc(R"("UTSMode":"host")"));
    add({"userns_host", "POST", create, nullptr, D, "namespace.user"},
        hc(R"("UsernsMode":"host")"));
    add({"cgroupns_host", "POST", create, nullptr, D, "namespace.cgroup"},
        hc(R"("CgroupnsMode":"host")"));
    add({"network_host", "POST", create, nullptr, D, "namespace.network"},
        hc(R"("NetworkMode":"host")"));
    add({"network_host_kelvin_key", "POST", create, nullptr, D, "namespace.network"},
        hc(R"("Networ\u212aMode":"host")"));
    add({"network_host_by_id", "POST", create, nullptr, D, "namespace.network"},
        hc(R"("NetworkMode":"hostalias")"));
    add({"network_host_endpoint", "POST", create,
         R"({"Image":"a","NetworkingConfig":{"EndpointsConfig":{"host":{}}}})", D,
         "namespace.network"});
    add({"network_connect_host", "POST", "/v1.41/networks/host/connect", R"({"Container":"c1"})", D,
         "namespace.network"});
    // ---------------------------------------------------------------- bind mounts
    add({"bind_root", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/:/host"])"));
    add({"bind_long_s_key", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Bind\u017f":["/:/host"])"));
    add({"bind_proc", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/proc:/p"])"));
    add({"bind_sys_sub", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/sys/kernel:/k"])"));
    add({"bind_dev_disk", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/dev/vda:/d"])"));
    add({"bind_etc_file", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/etc/passwd:/p:ro"])"));
    add({"bind_var_parent_of_docker", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/var:/v"])"));
    add({"bind_var_lib_docker_sub", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/var/lib/docker/volumes:/v"])"));
    add({"bind_dotdot_unclean", "POST", create, nullptr, D, "bind-mount.syntax"},
        hc(R"("Binds":["/home/user/../../:/h"])"));
    add({"bind_symlink_dir_to_run", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/tmp/link-to-run:/r"])"));
    add({"bind_symlink_to_root", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/srv/rootlink/etc:/e"])"));
    add({"bind_relative_symlink_up", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/home/user/up:/h"])"));
    add({"bind_socket_dir", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/run/cordon:/s"])"));
    add({"bind_run_parent", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Binds":["/var/run:/s"])"));
    add({"bind_propagation_rshared", "POST", create, nullptr, D, "bind-mount.propagation"},
        hc(R"("Binds":["/tmp/ok:/x:rshared"])"));
    add({"mount_bind_root", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Mounts":[{"Type":"bind","Source":"/","Target":"/host"}])"));
    add({"mount_bind_folded_keys", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("mounts":[{"type":"bind","SOURCE":"/etc","target":"/e"}])"));
    add({"mount_bind_shared", "POST", create, nullptr, D, "bind-mount.propagation"},
        hc(R"("Mounts":[{"Type":"bind","Source":"/tmp/ok","Target":"/x","BindOptions":{"Propagation":"shared"}}])"));
    add({"mount_volume_local_bind_etc", "POST", create, nullptr, D, "bind-mount.sensitive"},
        hc(R"("Mounts":[{"Type":"volume","Source":"v","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}])"));
    add({"mount_type_npipe", "POST", create, nullptr, D, "mount.type"},
        hc(R"("Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}])"));
    add({"volume_driver_plugin", "POST", create, nullptr, D, "volume.driver"},
        hc(R"("VolumeDriver":"convoy")"));
    // ---------------------------------------------------------------- the Docker socket
    add({"socket_mount_not_allowlisted", "POST", create, nullptr, D, "bind-mount.docker-socket"},
        hc(R"("Binds":["/var/run/docker.sock:/var/run/docker.sock"])", "evil:latest"));
    add({"socket_mount_retagged_image", "POST", create, nullptr, D, "bind-mount.docker-socket"},
        hc(R"("Binds":["/var/run/docker.sock:/var/run/docker.sock"])", "retagged:latest"));
    add({"socket_mount_raw_dockerd_symlink", "POST", create, nullptr, D,
         "bind-mount.docker-socket"},
        hc(R"("Binds":["/tmp/link-sock:/s"])", "evil:latest"));
    add({"socket_mount_hard_link", "POST", create, nullptr, D, "bind-mount.docker-socket"},
        hc(R"("Binds":["/tmp/hardsock:/s"])", "evil:latest"));
    add({"socket_mount_dotdot_unclean", "POST", create, nullptr, D, "bind-mount.syntax"},
        hc(R"("Binds":["/var/run/../run/cordon/dockerd.sock:/s"])", "evil:latest"));
    add({"socket_mount_via_var_run_symlink", "POST", create, nullptr, D,
         "bind-mount.docker-socket"},
        hc(R"("Binds":["/var/run/cordon/dockerd.sock:/s"])", "evil:latest"));
    add({"socket_mount_image_missing", "POST", create, nullptr, Verdict::not_found, nullptr},
        hc(R"("Binds":["/var/run/docker.sock:/var/run/docker.sock"])", "notpulled:1"));
    add({"socket_volume_bind", "POST", "/v1.41/volumes/create",
         R"({"DriverOpts":{"o":"bind","device":"/var/run/docker.sock"}})", D,
         "bind-mount.docker-socket"});
    // ---------------------------------------------------------------- capabilities
    add({"capadd_sys_admin", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":["SYS_ADMIN"])"));
    add({"capadd_prefixed_lowercase", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":["cap_sys_module"])"));
    add({"capadd_mixed_case", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":["Sys_Ptrace"])"));
    add({"capadd_all", "POST", create, nullptr, D, "capabilities"}, hc(R"("CapAdd":["ALL"])"));
    add({"capadd_string_form", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":"NET_ADMIN")"));
    add({"capadd_non_ascii", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":["\u017fys_admin"])"));
    add({"capabilities_field", "POST", create, nullptr, D, "capabilities"},
        hc(R"("Capabilities":["CAP_BPF","CAP_CHOWN"])"));
    add({"capadd_rawio", "POST", create, nullptr, D, "capabilities"},
        hc(R"("CapAdd":["SYS_RAWIO"])"));
    // ---------------------------------------------------------------- devices, security options,
    // runtime
    add({"devices", "POST", create, nullptr, D, "devices"},
        hc(R"("Devices":[{"PathOnHost":"/dev/kvm","PathInContainer":"/dev/kvm","CgroupPermissions":"rwm"}])"));
    add({"device_cgroup_rules", "POST", create, nullptr, D, "devices"},
        hc(R"("DeviceCgroupRules":["b *:* rwm"])"));
    add({"device_requests_gpu", "POST", create, nullptr, D, "devices"},
        hc(R"("DeviceRequests":[{"Count":-1}])"));
    add({"seccomp_unconfined", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["seccomp=unconfined"])"));
    add({"seccomp_unconfined_colon", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["seccomp:unconfined"])"));
    add({"seccomp_custom_profile", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"])"));
    add({"apparmor_unconfined", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["apparmor=unconfined"])"));
    add({"label_disable", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["label=disable"])"));
    add({"systempaths_unconfined", "POST", create, nullptr, D, "security-opt"},
        hc(R"("SecurityOpt":["systempaths=unconfined"])"));
    add({"masked_paths_empty", "POST", create, nullptr, D, "masked-paths"},
        hc(R"("MaskedPaths":[])"));
    add({"readonly_paths_empty", "POST", create, nullptr, D, "masked-paths"},
        hc(R"("ReadonlyPaths":[])"));
    add({"runtime_override", "POST", create, nullptr, D, "runtime"},
        hc(R"("Runtime":"io.containerd.runc.v2.evil")"));
    add({"runtime_plain_runc_skips_exclusive_ranges", "POST", create, nullptr, D, "runtime"},
        hc(R"("Runtime":"runc")"));
    add({"sysctl_kernel", "POST", create, nullptr, D, "sysctl"},
        hc(R"("Sysctls":{"kernel.core_pattern":"|/tmp/x"})"));
    add({"sysctl_slash_form", "POST", create, nullptr, D, "sysctl"},
        hc(R"("Sysctls":{"kernel/modprobe":"/tmp/x"})"));
    add({"cgroup_parent", "POST", create, nullptr, D, "cgroup-parent"},
        hc(R"("CgroupParent":"/system.slice")"));
    add({"oom_kill_disable", "POST", create, nullptr, D, "oom"}, hc(R"("OomKillDisable":true)"));
    add({"oom_score_negative", "POST", create, nullptr, D, "oom"}, hc(R"("OomScoreAdj":-1000)"));
    add({"realtime_runtime", "POST", create, nullptr, D, "realtime"},
        hc(R"("CpuRealtimeRuntime":950000)"));
    add({"log_driver_syslog_socket", "POST", create, nullptr, D, "log-driver"},
        hc(R"("LogConfig":{"Type":"syslog","Config":{"syslog-address":"unixgram:///run/cordon/dockerd.sock"}})"));
    // dockerd 20.10 ignores fields it does not know: they are stripped, not refused
    add({"unknown_field_nonzero_is_stripped", "POST", create, nullptr, A, "allow.rewritten"},
        hc(R"("FutureLoosen":true)"));
    add({"endpoint_driver_opts", "POST", create,
         R"({"Image":"a","NetworkingConfig":{"EndpointsConfig":{"mynet":{"DriverOpts":{"x":"y"}}}}})",
         D, "network.driver-opts"});
    // ---------------------------------------------------------------- update, volumes, networks
    add({"update_devices", "POST", "/v1.41/containers/c1/update",
         R"({"DeviceCgroupRules":["c *:* rwm"]})", D, "devices"});
    add({"update_cgroup_parent_folded", "POST", "/v1.41/containers/c1/update",
         R"({"cgroupparent":"/"})", D, "cgroup-parent"});
    add({"update_privileged_is_not_an_update_field", "POST", "/v1.41/containers/c1/update",
         R"({"Privileged":true})", A, "allow.rewritten"});
    add({"update_privileged_hidden_beside_cgroup_parent", "POST", "/v1.41/containers/c1/update",
         R"({"Privileged":true,"CgroupParent":"/"})", D, "cgroup-parent"});
    add({"volume_bind_root", "POST", "/v1.41/volumes/create",
         R"({"Name":"r","DriverOpts":{"type":"none","o":"bind","device":"/"}})", D,
         "bind-mount.sensitive"});
    add({"volume_rbind_var", "POST", "/v1.41/volumes/create",
         R"({"DriverOpts":{"type":"none","o":"ro,rbind","device":"/var/lib"}})", D,
         "bind-mount.sensitive"});
    add({"volume_block_device", "POST", "/v1.41/volumes/create",
         R"({"DriverOpts":{"type":"ext4","device":"/dev/vda"}})", D, "volume.type"});
    add({"volume_plugin_driver", "POST", "/v1.41/volumes/create", R"({"Driver":"rexray"})", D,
         "volume.driver"});
    add({"network_macvlan", "POST", "/v1.41/networks/create",
         R"({"Name":"m","Driver":"macvlan","Options":{"parent":"eth0"}})", D, "network.driver"});
    add({"network_bridge_name_takeover", "POST", "/v1.41/networks/create",
         R"({"Name":"b","Options":{"com.docker.network.bridge.name":"eth0"}})", D,
         "network.options"});
    add({"network_ingress", "POST", "/v1.41/networks/create", R"({"Name":"i","Ingress":true})", D,
         "swarm"});
    // ---------------------------------------------------------------- endpoints, plugins, swarm,
    // build
    add({"plugin_pull", "POST", "/v1.41/plugins/pull?remote=evil", nullptr, D, "plugin"});
    add({"plugin_enable", "POST", "/v1.41/plugins/evil/enable", nullptr, D, "plugin"});
    add({"swarm_init", "POST", "/v1.41/swarm/init", "{}", D, "swarm"});
    add({"service_create", "POST", "/v1.41/services/create", "{}", D, "swarm"});
    // Swarm writes refused, the read-only queries a client makes forwarded (dockerd
    // answers 503 "not a swarm manager" as it does outside a swarm).
    add({"swarm_join", "POST", "/v1.41/swarm/join", "{}", D, "swarm"});
    add({"swarm_update", "POST", "/v1.41/swarm/update?version=1", "{}", D, "swarm"});
    add({"swarm_unlock", "POST", "/v1.41/swarm/unlock", "{}", D, "swarm"});
    add({"swarm_unlockkey", "GET", "/v1.41/swarm/unlockkey", nullptr, D, "swarm"});
    add({"service_update", "POST", "/v1.41/services/web/update?version=3", "{}", D, "swarm"});
    add({"service_remove", "DELETE", "/v1.41/services/web", nullptr, D, "swarm"});
    add({"node_update", "POST", "/v1.41/nodes/n1/update?version=1", "{}", D, "swarm"});
    add({"node_remove", "DELETE", "/v1.41/nodes/n1", nullptr, D, "swarm"});
    add({"secret_create", "POST", "/v1.41/secrets/create", "{}", D, "swarm"});
    add({"secret_update", "POST", "/v1.41/secrets/s1/update?version=1", "{}", D, "swarm"});
    add({"config_create", "POST", "/v1.41/configs/create", "{}", D, "swarm"});
    add({"config_remove", "DELETE", "/v1.41/configs/c1", nullptr, D, "swarm"});
    add({"swarm_inspect", "GET", "/v1.41/swarm", nullptr, A, nullptr});
    add({"swarm_leave", "POST", "/v1.41/swarm/leave?force=1", nullptr, A, nullptr});
    add({"node_list", "GET", "/v1.41/nodes", nullptr, A, nullptr});
    add({"node_inspect", "GET", "/v1.41/nodes/n1", nullptr, A, nullptr});
    add({"service_list", "GET", "/v1.41/services?status=true", nullptr, A, nullptr});
    add({"service_inspect", "GET", "/v1.41/services/web", nullptr, A, nullptr});
    add({"service_logs", "GET", "/v1.41/services/web/logs?stdout=1", nullptr, A, nullptr});
    add({"task_list", "GET", "/v1.41/tasks", nullptr, A, nullptr});
    add({"task_inspect", "GET", "/v1.41/tasks/t1", nullptr, A, nullptr});
    add({"task_logs", "GET", "/v1.41/tasks/t1/logs", nullptr, A, nullptr});
    add({"secret_list", "GET", "/v1.41/secrets", nullptr, A, nullptr});
    add({"secret_inspect", "GET", "/v1.41/secrets/s1", nullptr, A, nullptr});
    add({"config_list", "GET", "/v1.41/configs", nullptr, A, nullptr});
    add({"config_inspect", "GET", "/v1.41/configs/c1", nullptr, A, nullptr});
    add({"grpc", "POST", "/grpc", nullptr, D, "build.grpc"});
    add({"build_network_host", "POST", "/v1.41/build?networkmode=host", nullptr, D,
         "build.network"});
    add({"build_network_host_second_value", "POST",
         "/v1.41/build?networkmode=default&networkmode=host", nullptr, D, "build.network"});
    add({"build_unknown_param", "POST", "/v1.41/build?entitlements=security.insecure", nullptr, D,
         "build.query"});
    add({"build_cgroupparent", "POST", "/v1.41/build?cgroupparent=%2F", nullptr, D,
         "cgroup-parent"});
    // What the docker 20.10 CLI sends with every build (cpusetmems empty): dockerd reads it.
    add({"build_cli_20_10_query", "POST",
         "/v1.41/build?buildargs=%7B%7D&cachefrom=%5B%5D&cgroupparent=&cpuperiod=0&cpuquota=0&"
         "cpusetcpus=&cpusetmems=&cpushares=0&dockerfile=Dockerfile&labels=%7B%7D&memory=0&"
         "memswap=0&networkmode=default&rm=1&session=s1&shmsize=0&t=a%3A1&target=&ulimits=null&"
         "version=2",
         nullptr, A, nullptr});
    add({"build_securityopt_unconfined", "POST",
         "/v1.41/build?securityopt=seccomp%3Dunconfined", nullptr, D, "build.security-opt"});
    add({"build_securityopt_second_value", "POST",
         "/v1.41/build?securityopt=&securityopt=apparmor%3Dunconfined", nullptr, D,
         "build.security-opt"});
    add({"build_form_body", "POST", "/v1.41/build", nullptr, D, "http.form", Role::host,
         "application/x-www-form-urlencoded"});
    add({"build_form_nbsp", "POST", "/v1.41/build", nullptr, D, "http.form", Role::host,
         "application/x-www-form-urlencoded\xC2\xA0"});
    add({"build_form_dotted_capital_i", "POST", "/v1.41/build", nullptr, D, "http.form", Role::host,
         "appl\xC4\xB0"
         "cation/x-www-form-urlencoded"});
    add({"build_multipart", "POST", "/v1.41/build", nullptr, D, "http.form", Role::host,
         "Multipart/Form-Data; boundary=x"});
    add({"create_form", "POST", create, "{}", D, "http.form", Role::host,
         "application/x-www-form-urlencoded"});
    add({"build_tar_context", "POST", "/v1.41/build?t=x", nullptr, A, nullptr, Role::host,
         "application/x-tar"});
    add({"unknown_endpoint", "GET", "/v1.41/debug/pprof", nullptr, D, "endpoint"});
    add({"options_method", "OPTIONS", "/v1.41/containers/json", nullptr, D, "endpoint"});
    add({"old_api_start_hostconfig", "POST", "/v1.23/containers/c1/start", R"({"Privileged":true})",
         D, "api-version"});
    add({"too_new_api", "GET", "/v1.99/info", nullptr, D, "api-version"});
    add({"start_with_hostconfig", "POST", "/v1.41/containers/c1/start", R"({"Binds":["/:/h"]})", D,
         "start-body"});
    add({"path_dot_segments", "POST", "/v1.41/containers/x/../create", nullptr, D, "http.path"});
    add({"path_encoded_dot_segments", "POST", "/v1.41/containers/x/%2e%2e/create", nullptr, D,
         "http.path"});
    add({"path_double_slash", "POST", "//containers/create", nullptr, D, "http.path"});
    add({"path_bad_escape", "GET", "/v1.41/containers/%zz/json", nullptr, D, "http.path"});
    add({"query_semicolon", "POST", "/v1.41/build?t=a;networkmode=host", nullptr, D, "http.query"});
    add({"json_too_deep", "POST", create, nullptr, D, "json.syntax"},
        R"({"Image":"a","Labels":)" + std::string(100, '[') + std::string(100, ']') + "}");
    add({"body_over_limit", "POST", create, nullptr, D, "body-size"},
        R"({"Image":"a","Env":[")" + std::string(2 << 20, 'x') + R"("]})");
    // ---------------------------------------------------------------- containers holding the
    // socket
    add({"container_role_denied_command", "POST", "/v1.41/images/app/push", nullptr, D,
         "command-list", Role::container});
    add({"container_role_create_checked", "POST", create, nullptr, D, "privileged",
         Role::container},
        hc(R"("Privileged":true)"));
    return t;
}

class PolicyTable : public ::testing::TestWithParam<Row> {
  protected:
    static void SetUpTestSuite() { root_ = new std::string(cordon::testing::make_vm_tree()); }
    static void TearDownTestSuite() {
        std::filesystem::remove_all(*root_);
        delete root_;
    }
    static std::string* root_;
};
std::string* PolicyTable::root_ = nullptr;

cordon::policy::Lookups fake_dockerd() {
    cordon::policy::Lookups l;
    l.images["allowed:latest"] = {true, kAllowedId, {}, {}};
    l.images["evil:latest"] = {true, kEvilId, {"evil@sha256:" + std::string(64, 'c')}, {}};
    // an evil image re-tagged with an allowed name: same Id, no allowed digest
    l.images["retagged:latest"] = {true, kEvilId, {"evil@sha256:" + std::string(64, 'c')}, {}};
    l.images["compose:v2"] = {
        true, "sha256:" + std::string(64, 'd'), {"docker/compose@sha256:" + std::string(64, 'e')}, {}};
    l.images["notpulled:1"] = {false, {}, {}, {}};
    // the pinned Ids a rewritten socket-mount body names
    l.images[kAllowedId] = {true, kAllowedId, {}, {}};
    l.images["sha256:" + std::string(64, 'd')] = l.images["compose:v2"];
    l.networks["mynet"] = {true, "1234", "mynet", "bridge"};
    l.networks["hostalias"] = {true, "5678", "host", "host"};
    // named volumes: plain ones, missing ones (dockerd creates them), and ones created
    // with options while isolation was off
    l.volumes["data"] = {true, "local", {}};
    l.volumes["cache"] = {false, {}, {}};
    l.volumes["v"] = {false, {}, {}};
    l.volumes["t"] = {false, {}, {}};
    l.volumes["pg"] = {true, "local", {}};
    l.volumes["scratch"] = {
        true, "local", {{"type", "tmpfs"}, {"device", "tmpfs"}, {"o", "size=64m"}}};
    l.volumes["legacy-overlay"] = {
        true, "local", {{"type", "overlay"}, {"device", "overlay"}, {"o", "lowerdir=/etc:/data"}}};
    l.volumes["legacy-bind-etc"] = {
        true, "local", {{"type", "none"}, {"device", "/etc"}, {"o", "bind"}}};
    l.volumes["plugin-vol"] = {true, "rexray", {}};
    l.volumes["share-bind"] = {
        true, "local", {{"type", "none"}, {"device", "/home/user/project"}, {"o", "bind"}}};
    // containers, for docker cp (the archive endpoints)
    l.containers["c1"] = {true, {}};
    l.containers["with-volumes"] = {
        true, {{"volume", "", "data", "local"}, {"volume", "", "scratch", "local"},
               {"tmpfs", "", "", ""}}};
    l.containers["with-bind"] = {
        true, {{"volume", "", "data", "local"}, {"bind", "/home/user/project", "", ""}}};
    l.containers["with-bind-volume"] = {true, {{"volume", "", "share-bind", "local"}}};
    l.containers["with-legacy-volume"] = {true, {{"volume", "", "legacy-overlay", "local"}}};
    l.containers["gone"] = {false, {}};
    return l;
}

Decision run(const Policy& p, const Row& r, const cordon::policy::Lookups& lookups) {
    RequestInfo req{r.c.method, r.c.target, r.c.content_type, r.c.role};
    Decision d = p.check_head(req);
    for (int round = 0; round < 3 && d.verdict == Verdict::need_lookup; ++round)
        d = p.check_head(req, &lookups);  // docker cp: the container, then its volumes
    if (d.verdict != Verdict::inspect)
        return d;
    return p.check_body(req, d, r.body, &lookups);
}

TEST_P(PolicyTable, Decides) {
    const Row& r = GetParam();
    auto cfg = cordon::testing::test_config(*root_);
    cfg.command_list = {cordon::policy::CommandList::Type::allow,
                        {"container.*", "system.*", "image.inspect"}};
    Policy p(cfg);
    Decision d = run(p, r, fake_dockerd());
    EXPECT_EQ(static_cast<int>(d.verdict), static_cast<int>(r.c.want))
        << "rule=" << d.rule << " message=" << d.message;
    if (r.c.rule) {
        EXPECT_EQ(d.rule.rfind(r.c.rule, 0), 0u) << "got rule " << d.rule << ": " << d.message;
    }
    if (d.verdict == Verdict::deny) {
        EXPECT_FALSE(d.message.empty());
    }
    if (d.verdict == Verdict::allow && d.rewritten_body) {
        // a rewritten body is valid JSON and passes the policy again unchanged
        EXPECT_NO_THROW(cordon::gojson::parse(*d.rewritten_body));
        Row again = r;
        again.body = *d.rewritten_body;
        Decision d2 = run(p, again, fake_dockerd());
        EXPECT_EQ(d2.verdict, Verdict::allow) << d2.rule << ": " << d2.message;
        EXPECT_FALSE(d2.rewritten_body && *d2.rewritten_body != again.body)
            << "rewriting is not idempotent: " << *d2.rewritten_body;
    }
}

INSTANTIATE_TEST_SUITE_P(Cases, PolicyTable, ::testing::ValuesIn(table()),
                         [](const ::testing::TestParamInfo<Row>& i) {
                             return std::string(i.param.c.name);
                         });

TEST(PolicyTableSize, AtLeastSixtyCasesWithAttacksAndLegitimateUses) {
    auto t = table();
    std::size_t denies = 0, allows = 0;
    for (const auto& r : t) (r.c.want == Verdict::deny ? denies : allows)++;
    EXPECT_GE(t.size(), 60u);
    EXPECT_GE(denies, 30u);
    EXPECT_GE(allows, 30u);
}

}  // namespace

#pragma once
// A scratch "VM filesystem" for bind-source checks: the policy resolves paths against
// PolicyConfig::fs_root, so symlinks, hard links and dot segments are real here.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "cordon/proxy/policy.hpp"

namespace cordon::testing {

inline std::string make_vm_tree() {
    char tmpl[] = "/tmp/cordon-vmfs-XXXXXX";
    if (!mkdtemp(tmpl))
        throw std::runtime_error("mkdtemp failed");
    std::string r = tmpl;
    namespace fs = std::filesystem;
    for (const char* d :
         {"/run/cordon", "/run/containerd", "/var/lib/docker/volumes", "/etc", "/proc",
          "/sys/kernel", "/dev", "/tmp/ok", "/home/user/project", "/srv/data", "/root", "/boot"})
        fs::create_directories(r + d);
    for (const char* f : {"/run/cordon/docker.sock", "/run/cordon/dockerd.sock", "/etc/passwd"})
        std::ofstream(r + f) << "x";
    fs::create_directory_symlink("/run", r + "/var/run");  // as on Debian
    fs::create_directory_symlink("/run/cordon", r + "/tmp/link-to-run");
    fs::create_symlink("../run/cordon/dockerd.sock", r + "/tmp/link-sock");
    fs::create_directory_symlink("../../", r + "/home/user/up");  // reaches /
    fs::create_symlink("/", r + "/srv/rootlink");
    fs::create_hard_link(r + "/run/cordon/dockerd.sock", r + "/tmp/hardsock");
    return r;
}

inline policy::PolicyConfig test_config(const std::string& root) {
    policy::PolicyConfig c;
    c.fs_root = root;
    c.docker_sockets = {"/var/run/docker.sock", "/run/cordon/docker.sock",
                        "/run/cordon/dockerd.sock"};
    c.container_socket_path = "/run/cordon/docker.sock";
    c.socket_image_allowlist = {"sha256:" + std::string(64, 'a'),
                                "docker/compose@sha256:" + std::string(64, 'e')};
    return c;
}

}  // namespace cordon::testing

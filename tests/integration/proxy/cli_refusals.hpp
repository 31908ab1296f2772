#pragma once
// docker CLI commands the policy refuses, with the rule each refusal must name. Shared by
// the integration test (the proxy before a stub dockerd) and the e2e test (the VM's real
// dockerd through the host agent, the channel and the guest's proxy). `IMAGE` stands for
// an image the caller has (the e2e test's local busybox), so a command the policy let
// through would really run.
#include <string>

namespace cordon::testing {

struct CliRefusal {
    const char* args;  // after `docker `; IMAGE is replaced by the caller's image
    const char* rule;  // the refusal must print "[rule <rule>"
    // Needs the real dockerd: a socket mount makes the policy look the image up (a stub
    // without images answers 404 and the CLI pulls), and --device needs the OSType that
    // dockerd's /_ping reports.
    bool needs_engine = false;
};

inline constexpr CliRefusal kCliRefusals[] = {
    {"run --rm --privileged IMAGE true", "privileged"},
    {"run --rm -v /:/host IMAGE true", "bind-mount.sensitive"},
    {"run --rm -v /etc:/e:ro IMAGE true", "bind-mount.sensitive"},
    {"run --rm --mount type=bind,source=/proc,target=/p IMAGE true", "bind-mount.sensitive"},
    {"run --rm -v /run/cordon/docker.sock:/var/run/docker.sock IMAGE true",
     "bind-mount.docker-socket", true},
    {"run --rm -v /run/cordon/dockerd.sock:/var/run/docker.sock IMAGE true",
     "bind-mount.docker-socket", true},
    {"run --rm -v /var/run/docker.sock:/var/run/docker.sock IMAGE true", "bind-mount.docker-socket",
     true},
    {"run --rm --mount type=bind,source=/run/cordon/docker.sock,target=/s IMAGE true",
     "bind-mount.docker-socket", true},
    {"run --rm -v /run/cordon:/x IMAGE true", "bind-mount.sensitive"},
    {"run --rm --mount type=bind,source=/var/run,target=/x IMAGE true", "bind-mount.sensitive"},
    {"run --rm --pid host IMAGE true", "namespace.pid"},
    {"run --rm --ipc host IMAGE true", "namespace.ipc"},
    {"run --rm --uts host IMAGE true", "namespace.uts"},
    {"run --rm --userns host IMAGE true", "namespace.user"},
    {"run --rm --network host IMAGE true", "namespace.network"},
    {"run --rm --net=host IMAGE true", "namespace.network"},
    {"run --rm --cap-add sys_admin IMAGE true", "capabilities"},
    {"run --rm --cap-add SYS_ADMIN IMAGE true", "capabilities"},
    {"run --rm --cap-add ALL IMAGE true", "capabilities"},
    {"run --rm --device /dev/vda IMAGE true", "devices", true},
    {"run --rm --security-opt seccomp=unconfined IMAGE true", "security-opt"},
    {"run --rm --security-opt apparmor=unconfined IMAGE true", "security-opt"},
    // the CLI turns systempaths=unconfined into empty MaskedPaths/ReadonlyPaths
    {"run --rm --security-opt systempaths=unconfined IMAGE true", "masked-paths"},
    {"run --rm --device-cgroup-rule 'b *:* rwm' IMAGE true", "devices"},
    {"run --rm --oom-kill-disable -m 64m IMAGE true", "oom"},
    {"run --rm --oom-score-adj -900 IMAGE true", "oom"},
    {"run --rm --cgroup-parent /system.slice IMAGE true", "cgroup-parent"},
    {"run --rm --runtime evil IMAGE true", "runtime"},
    {"run --rm --runtime io.containerd.runc.v2 IMAGE true", "runtime"},
    {"run --rm --log-driver syslog IMAGE true", "log-driver"},
    {"volume create -d local -o type=none -o o=bind -o device=/etc cordon-v1",
     "bind-mount.sensitive"},
    {"network create -d macvlan cordon-m1", "network.driver"},
    {"plugin install --grant-all-permissions vieux/sshfs", "plugin"},
    {"swarm init", "swarm"},
    {"service create IMAGE", "swarm"},
};

inline std::string with_image(const char* args, const std::string& image) {
    std::string s = args;
    for (auto p = s.find("IMAGE"); p != std::string::npos; p = s.find("IMAGE", p + image.size()))
        s.replace(p, 5, image);
    return s;
}

}  // namespace cordon::testing

#pragma once
// A guest agent that starts while a host agent still holds the previous agent's session
// (the agent was killed and busybox init restarted it) must make the host re-handshake:
// otherwise the host only notices when its keepalive PING times out (30 s), and every
// Docker call meanwhile hangs. So before serving the port, the agent writes one GOAWAY
// frame (code normal). A host in an established session ends it and reconnects with a
// new HELLO at once; a host that is handshaking skips it while it scans for its WELCOME
// (docs/PROTOCOL.md, resync). The write never blocks: with no host connected the port
// refuses it (EAGAIN) and there is nobody to tell.
namespace cordon::agent {

// Returns true when the frame was written whole.
bool send_restart_notice(int port_fd) noexcept;

}  // namespace cordon::agent

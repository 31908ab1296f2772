// A static UDP echo server for the published-UDP-port e2e case: the test image's busybox
// has no UDP server (its nc lacks -u), so the test imports an image holding this binary.
// usage: udp_echo PORT  -- answers every datagram with "udp-echo:" + the datagram.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
    const int port = argc == 2 ? std::atoi(argv[1]) : 0;
    if (port <= 0 || port > 65535) {
        std::fprintf(stderr, "usage: udp_echo PORT (1-65535)\n");
        return 2;
    }
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        std::perror("udp_echo: bind");
        return 1;
    }
    std::fprintf(stderr, "udp_echo: listening on udp port %d\n", port);
    static char in[65536], out[65536 + 16];
    for (;;) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        const ssize_t n =
            ::recvfrom(fd, in, sizeof in, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0)
            continue;
        const std::size_t m =
            static_cast<std::size_t>(n) > 65507 - 9 ? 65507 - 9 : static_cast<std::size_t>(n);
        std::memcpy(out, "udp-echo:", 9);
        std::memcpy(out + 9, in, m);
        ::sendto(fd, out, 9 + m, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
}

// cordon-policy-proxy: the policy proxy on its own, for tests and benchmarks. The guest
// agent embeds PolicyProxy instead.
#pragma GCC diagnostic ignored "-Wnull-dereference"  // Boost.Asio false positive, see proxy.cpp
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cordon/error.hpp"
#include "cordon/log.hpp"
#include "cordon/proxy/proxy.hpp"

int main(int argc, char** argv) {
    CLI::App app{"Cordon's Docker socket policy proxy (enhanced container isolation)"};
    std::string listen, upstream, container_listen, isolation, admin, audit_path, level = "info";
    app.add_option("--listen", listen, "socket to serve the Docker API on")->required();
    app.add_option("--upstream", upstream, "dockerd's socket")->required();
    app.add_option("--container-listen", container_listen,
                   "socket bound into allowlisted containers");
    app.add_option("--isolation", isolation, "on|off (default: on, or the admin setting)")
        ->check(CLI::IsMember({"on", "off"}));
    app.add_option("--admin", admin, "admin settings JSON file (see docs/POLICY.md)");
    app.add_option("--audit", audit_path, "append-only JSON-lines audit file");
    app.add_option("--log-level", level, "debug|info|warn|error");
    CLI11_PARSE(app, argc, argv);
    cordon::log::Level lv{};
    if (!cordon::log::parse_level(level, lv)) {
        std::cerr << "cordon-policy-proxy: --log-level must be debug, info, warn or error\n";
        return 2;
    }
    cordon::log::set_level(lv);
    try {
        cordon::policy::PolicyConfig cfg;
        if (!admin.empty()) {
            std::ifstream in(admin);
            if (!in)
                cordon::throw_errno("cannot read the admin settings", admin);
            std::stringstream ss;
            ss << in.rdbuf();
            cfg = cordon::policy::load_admin_config(ss.str(), cfg);
        }
        cordon::policy::Policy check(cfg);
        if (isolation == "off")
            check.set_isolation(false);  // throws when locked
        if (!isolation.empty())
            cfg.isolation = isolation == "on";
        cordon::policy::AuditLog audit(1000, audit_path);
        boost::asio::io_context io;
        cordon::policy::ProxyOptions opt;
        opt.listen_path = listen;
        opt.upstream_path = upstream;
        opt.container_listen_path = container_listen;
        cordon::policy::PolicyProxy proxy(io, opt, cfg, audit);
        proxy.start();
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) {
            proxy.stop();
            io.stop();
        });
        io.run();
        auto st = proxy.stats();
        cordon::log::info("policy-proxy",
                          "stopped: {} connections, {} requests, {} refused, {} tunnels",
                          st.connections, st.requests, st.denied, st.tunnels);
        return 0;
    } catch (const cordon::Error& e) {
        std::cerr << "cordon-policy-proxy: " << e.what() << "\n";
        return 1;
    }
}

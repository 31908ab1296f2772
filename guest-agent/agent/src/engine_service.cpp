#include "engine_service.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <fstream>
#include <future>
#include <sstream>

#include "cordon/engine/docker_api.hpp"
#include "cordon/engine/isolation_rpc.hpp"
#include "cordon/engine/isolation_switch.hpp"
#include "cordon/engine/subid.hpp"
#include "cordon/guest/http_ping.hpp"
#include "cordon/guest/leftovers.hpp"
#include "cordon/log.hpp"

namespace cordon::agent {
namespace asio = boost::asio;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

constexpr const char* kComponent = "engine";

// Drives dockerd through the supervisor (io thread) from the switch's worker thread.
class SupervisedEngine final : public engine::EngineControl {
public:
    SupervisedEngine(asio::io_context& io, guest::Supervisor& sup, std::string socket)
        : io_(io), sup_(sup), socket_(std::move(socket)) {}

    void stop_engine() override {
        auto done = std::make_shared<std::promise<void>>();
        auto fut = done->get_future();
        asio::post(io_, [this, done] { sup_.stop("dockerd", [done] { done->set_value(); }); });
        if (fut.wait_for(60s) != std::future_status::ready)
            throw Error("dockerd did not stop within 60 s", "dockerd", "'vmctl logs engine' shows why");
    }
    void start_engine() override {
        asio::post(io_, [this] { sup_.start("dockerd"); });
    }
    void wait_ready(std::chrono::seconds timeout) override {
        engine::UnixDockerApi api(socket_, 5s);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (api.ping()) return;
            std::this_thread::sleep_for(200ms);
        }
        throw Error("dockerd did not answer within " + std::to_string(timeout.count()) + " s", socket_,
                    "'vmctl logs engine' shows dockerd's log");
    }

private:
    asio::io_context& io_;
    guest::Supervisor& sup_;
    std::string socket_;
};

}  // namespace

EngineService::EngineService(asio::io_context& io, guest::Supervisor& supervisor, engine::EnginePaths paths,
                             std::function<void(bool)> on_mode)
    : io_(io),
      supervisor_(supervisor),
      paths_(std::move(paths)),
      store_(paths_.state_dir + "/isolation.json"),
      on_mode_(std::move(on_mode)),
      alive_(std::make_shared<bool>(true)) {}

EngineService::~EngineService() {
    *alive_ = false;
    if (worker_.joinable()) worker_.join();
}

bool EngineService::prepare_boot(const std::string& kernel_cmdline) {
    // A switch leaves this marker while it runs: if it is here now, the agent that ran it
    // died on the way and the engine may be half switched (adoption is then refused).
    if (::access(switch_marker().c_str(), F_OK) == 0) {
        interrupted_switch_ = true;
        ::unlink(switch_marker().c_str());
        log::warn(kComponent, "an isolation switch was under way when the previous agent stopped");
    }
    try {
        if (auto r = engine::read_subid_range("/etc/subuid", user_.name)) user_.uids = *r;
        if (auto r = engine::read_subid_range("/etc/subgid", user_.name)) user_.gids = *r;
    } catch (const std::exception& e) {
        log::error(kComponent, "{}; using {}:{}:{}", e.what(), user_.name, user_.uids.start, user_.uids.count);
    }
    std::istringstream words(kernel_cmdline);
    std::string word;
    while (words >> word) {
        if (word == "cordon.isolation_lock=on" || word == "cordon.isolation_lock=off") {
            lock_.locked = true;
            lock_.enabled = word.ends_with("=on");
            lock_.source = "the administrator's settings on the host";
        }
    }
    engine::IsolationChoice choice;
    try {
        choice = store_.load();
    } catch (const std::exception& e) {
        // Unreadable state: fall back to the safe mode, keep the file for inspection.
        log::error(kComponent, "{}; isolation stays on", e.what());
    }
    isolation_ = engine::effective_isolation(choice, lock_);
    engine::UnixDockerApi api(paths_.dockerd_socket);
    SupervisedEngine control(io_, supervisor_, paths_.dockerd_socket);
    engine::IsolationSwitch(paths_, user_, store_, api, control)
        .write_daemon_config(isolation_, isolation_ && choice.exclusive_ranges);
    log::info(kComponent, "isolation {}{}", isolation_ ? "on" : "off", lock_.locked ? " (locked by the administrator)" : "");
    if (on_mode_) on_mode_(isolation_);
    return isolation_;
}

void EngineService::handle_call(std::shared_ptr<rpc::Call> call) {
    const json& params = call->params();
    try {
        if (params.is_object() && params.contains("admin_lock")) {
            // The host's admin settings win over what the kernel command line said at boot.
            lock_ = engine::parse_admin_lock(params["admin_lock"]);
            if (lock_.locked && lock_.source.empty()) lock_.source = "the administrator's settings on the host";
        }
        const bool wants_switch = params.is_object() && params.contains("enabled");
        if (!wants_switch) {
            engine::IsolationChoice choice;
            try {
                choice = store_.load();
            } catch (const std::exception&) {
            }
            choice.enabled = isolation_;
            // The engine version needs dockerd: ask it off the io thread, briefly.
            std::thread([this, call, choice, lock = lock_, alive = alive_, socket = paths_.dockerd_socket] {
                std::string version;
                try {
                    version = engine::UnixDockerApi(socket, 3s).version();
                } catch (const std::exception&) {
                }
                asio::post(io_, [this, call, choice, lock, version, alive] {
                    if (*alive) call->reply(engine::isolation_status_json(choice, lock, user_, version));
                });
            }).detach();
            return;
        }
        if (switching_) throw rpc::CallError("busy", "an isolation switch is already in progress", "isolation");
        const engine::SwitchRequest req = engine::parse_switch_request(params);
        if (lock_.locked && req.enabled != lock_.enabled) {
            // Its own code, so the host can tell "locked" from other refusals.
            throw rpc::CallError("locked",
                                 std::string("isolation is locked ") + (lock_.enabled ? "on" : "off") +
                                     " by the administrator (" + lock_.source + ")",
                                 "isolation", "ask your administrator to change the admin settings");
        }
        if (worker_.joinable()) worker_.join();
        switching_ = true;
        std::ofstream(switch_marker()) << "started by agent pid " << ::getpid() << "\n";
        worker_ = std::thread([this, call, req, lock = lock_, alive = alive_] {
            json result;
            std::exception_ptr failure;
            try {
                engine::UnixDockerApi api(paths_.dockerd_socket, 120s);
                SupervisedEngine control(io_, supervisor_, paths_.dockerd_socket);
                engine::IsolationSwitch sw(paths_, user_, store_, api, control);
                auto progress = [this, call, alive](const std::string& step) {
                    log::info(kComponent, "isolation switch: {}", step);
                    asio::post(io_, [call, step, alive] {
                        if (*alive) call->notify("progress", {{"step", step}});
                    });
                };
                const auto r = sw.apply(req, lock, progress);
                result = engine::switch_result_json(r);
                result["user"] = user_.name;
                result["uid_range"] = {{"start", user_.uids.start}, {"count", user_.uids.count}};
            } catch (const engine::ConfirmationRequired& e) {
                failure = std::make_exception_ptr(
                    rpc::CallError("confirmation_required", e.failure(), "isolation", e.hint()));
            } catch (...) {
                failure = std::current_exception();
            }
            asio::post(io_, [this, call, result, failure, alive] {
                if (!*alive) return;
                switching_ = false;
                ::unlink(switch_marker().c_str());
                if (failure) {
                    call->fail(failure);
                    return;
                }
                isolation_ = result.value("enabled", isolation_);
                if (on_mode_) on_mode_(isolation_);
                call->reply(result);
            });
        });
    } catch (...) {
        call->fail(std::current_exception());
    }
}

void EngineService::start_services(const std::string& run_dir,
                                   const std::vector<std::pair<std::string, std::string>>& services,
                                   std::chrono::milliseconds ping_timeout,
                                   std::function<void(const StartPath&)> done) {
    bool recorded = false;
    std::string refused;
    std::string pids;
    for (const auto& [name, program] : services) {
        const guest::Adoption a = supervisor_.check_adoptable(name);
        recorded = recorded || a.recorded;
        if (!a.ok && refused.empty())
            refused = name + ": " + a.reason;
        if (a.ok)
            pids += (pids.empty() ? "" : ", ") + name + " pid " + std::to_string(a.pid);
    }
    if (!recorded && !interrupted_switch_) {
        restart_services(run_dir, services,
                         {"started", "no earlier start in this boot", "engine started"}, done);
        return;
    }
    if (interrupted_switch_)
        refused = "an isolation switch was under way when the previous agent stopped";
    if (!refused.empty()) {
        restart_services(run_dir, services,
                         {"restarted", refused, "engine restarted (not adopted: " + refused + ")"},
                         done);
        return;
    }
    // Everything runs as recorded: adopt only an engine that answers.
    guest::async_http_ping(
        io_, paths_.dockerd_socket, ping_timeout,
        [this, run_dir, services, ping_timeout, pids, done = std::move(done), alive = alive_](
            bool ok, const std::string& detail) {
            if (!*alive)
                return;
            if (!ok) {
                const std::string why = "dockerd did not answer /_ping within " +
                                        std::to_string(ping_timeout.count()) + " ms: " + detail;
                restart_services(run_dir, services,
                                 {"restarted", why, "engine restarted (not adopted: " + why + ")"},
                                 done);
                return;
            }
            for (const auto& [name, program] : services) {
                const guest::Adoption a = supervisor_.adopt(name);
                if (!a.ok) {
                    // It changed between the check and now (it died): start what is missing.
                    const std::string why = name + " could not be adopted: " + a.reason;
                    restart_services(
                        run_dir, services,
                        {"restarted", why, "engine restarted (not adopted: " + why + ")"}, done);
                    return;
                }
            }
            done({"adopted",
                  "the previous agent's " + pids + " run as recorded and dockerd answers",
                  "engine adopted from the previous agent"});
        });
}

void EngineService::restart_services(
    const std::string& run_dir, const std::vector<std::pair<std::string, std::string>>& services,
    StartPath path, const std::function<void(const StartPath&)>& done) {
    // What an earlier agent left running and this one does not supervise is stopped first,
    // or the new dockerd finds its pid file and sockets taken (or two engines share a root).
    std::vector<std::pair<std::string, std::string>> leftovers;
    for (const auto& s : services) {
        if (supervisor_.status(s.first).state != guest::ServiceState::running)
            leftovers.push_back(s);
    }
    const auto stopped = guest::stop_leftover_services(run_dir, leftovers, std::chrono::seconds(5));
    if (!stopped.empty()) {
        std::string names;
        for (const auto& l : stopped)
            names += (names.empty() ? "" : ", ") + l.name + " pid " + std::to_string(l.pid);
        path.reason += " (stopped " + names + ")";
    }
    supervisor_.start_all();
    done(path);
}

}  // namespace cordon::agent

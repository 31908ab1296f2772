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

constexpr const char* kEngineServiceLog = "engine";

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

// A test hook for the e2e suite: when <run dir>/isolation-switch.pause names a step of the
// switch ("volume moved", "engine starting"), the switch waits there (until the file is
// removed, at most 5 minutes) after creating isolation-switch.paused, so a test can kill
// the agent at a known point. The run dir is root-only.
void pause_at_step(const std::string& pause_file, const std::string& step) {
    std::string want;
    {
        std::ifstream in(pause_file);
        if (!in || !std::getline(in, want) || want != step)
            return;
    }
    const std::string paused = pause_file.substr(0, pause_file.size() - 5) + "paused";
    std::ofstream(paused) << step << "\n";
    log::warn(kEngineServiceLog, "isolation switch paused at \"{}\" by {}", step, pause_file);
    const auto deadline = std::chrono::steady_clock::now() + 5min;
    while (::access(pause_file.c_str(), F_OK) == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(100ms);
    ::unlink(paused.c_str());
}

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
    stopping_ = true;
    if (worker_.joinable()) worker_.join();
    if (images_worker_.joinable()) images_worker_.join();
}

bool EngineService::prepare_boot(const std::string& kernel_cmdline) {
    // A switch leaves this marker while it runs: if it is here now, the agent that ran it
    // died on the way and the engine may be half switched (adoption is then refused).
    if (::access(switch_marker().c_str(), F_OK) == 0) {
        interrupted_switch_ = true;
        ::unlink(switch_marker().c_str());
        log::warn(kEngineServiceLog, "an isolation switch was under way when the previous agent stopped");
    }
    try {
        if (auto r = engine::read_subid_range("/etc/subuid", user_.name)) user_.uids = *r;
        if (auto r = engine::read_subid_range("/etc/subgid", user_.name)) user_.gids = *r;
    } catch (const std::exception& e) {
        log::error(kEngineServiceLog, "{}; using {}:{}:{}", e.what(), user_.name, user_.uids.start, user_.uids.count);
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
    // A switch killed half-way left its journal: it is finished (start_services) and its
    // target mode is the one in force. An unreadable one is set aside and nothing moves.
    const engine::SwitchJournalFile journal(engine::switch_journal_path(paths_));
    const auto set_aside = [&](const std::string& why) {
        std::string aside;
        try {
            aside = "it is kept as " + journal.set_aside();
        } catch (const std::exception& e) {
            aside = std::string("it could not be set aside either: ") + e.what();
        }
        recovery_ = {"set_aside",
                     "an interrupted isolation switch was not finished: " + why + "; " + aside +
                         "; no volume was touched and the saved isolation mode stays",
                     ""};
        log::error(kEngineServiceLog, "{}", recovery_.message);
    };
    try {
        pending_journal_ = journal.load();
    } catch (const Error& e) {
        set_aside(e.failure() + " (" + e.subject() + ")");
    } catch (const std::exception& e) {
        set_aside(e.what());
    }
    if (pending_journal_) {
        interrupted_switch_ = true;  // never adopt: the engine restarts after the volumes are in place
        recovery_ = {"pending",
                     "an isolation switch was interrupted; finishing it (" +
                         std::to_string(pending_journal_->volumes.size()) + " volumes)",
                     ""};
        log::warn(kEngineServiceLog, "{}", recovery_.message);
    }
    const std::string note = engine::switch_images_note(paths_);
    const std::string archive = engine::switch_images_archive(paths_);
    images_pending_ = ::access(note.c_str(), F_OK) == 0 ||
                      (pending_journal_ && !pending_journal_->images_archive.empty());
    if (!images_pending_ && !pending_journal_ && ::access(archive.c_str(), F_OK) == 0) {
        // Saved by a switch killed before its journal was written: the old engine still has them.
        log::warn(kEngineServiceLog, "removing {}, left by an isolation switch that never moved anything", archive);
        ::unlink(archive.c_str());
    }
    engine::IsolationChoice choice;
    try {
        choice = pending_journal_ ? pending_journal_->save : store_.load();
    } catch (const std::exception& e) {
        // Unreadable state: fall back to the safe mode, keep the file for inspection.
        log::error(kEngineServiceLog, "{}; isolation stays on", e.what());
    }
    isolation_ = engine::effective_isolation(choice, lock_);
    engine::UnixDockerApi api(paths_.dockerd_socket);
    SupervisedEngine control(io_, supervisor_, paths_.dockerd_socket);
    engine::IsolationSwitch(paths_, user_, store_, api, control)
        .write_daemon_config(isolation_, isolation_ && choice.exclusive_ranges);
    log::info(kEngineServiceLog, "isolation {}{}", isolation_ ? "on" : "off", lock_.locked ? " (locked by the administrator)" : "");
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
            json recovery = nullptr;
            if (!recovery_.state.empty())
                recovery = {{"state", recovery_.state},
                            {"message", recovery_.message},
                            {"images", recovery_.images}};
            // The engine version needs dockerd: ask it off the io thread, briefly.
            std::thread([this, call, choice, recovery, lock = lock_, alive = alive_,
                         socket = paths_.dockerd_socket] {
                std::string version;
                try {
                    version = engine::UnixDockerApi(socket, 3s).version();
                } catch (const std::exception&) {
                }
                asio::post(io_, [this, call, choice, recovery, lock, version, alive] {
                    if (!*alive)
                        return;
                    json status = engine::isolation_status_json(choice, lock, user_, version);
                    if (!recovery.is_null())
                        status["interrupted_switch"] = recovery;
                    call->reply(status);
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
                const std::string pause = paths_.daemon_json.substr(0, paths_.daemon_json.rfind('/') + 1) +
                                          "isolation-switch.pause";
                sw.set_step_hook([pause](const std::string& step, const engine::SwitchJournal&) {
                    pause_at_step(pause, step);
                });
                auto progress = [this, call, alive](const std::string& step) {
                    log::info(kEngineServiceLog, "isolation switch: {}", step);
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
    if (images_pending_ || recovery_.state == "set_aside") {
        done = [this, done = std::move(done)](StartPath p) {
            if (recovery_.state == "set_aside")
                p.reason += "; " + recovery_.message;
            if (images_pending_)
                start_image_reload();
            done(p);
        };
    }
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
    if (pending_journal_) {
        // The reason is what the recovery did (restart_services).
        restart_services(run_dir, services, {recorded ? "restarted" : "started", "", ""}, done);
        return;
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
    if (pending_journal_)
        finish_interrupted_switch(path);
    supervisor_.start_all();
    done(path);
}

void EngineService::finish_interrupted_switch(StartPath& path) {
    // Nothing uses the data root now: the leftovers are stopped and dockerd is not started.
    engine::UnixDockerApi api(paths_.dockerd_socket);
    SupervisedEngine control(io_, supervisor_, paths_.dockerd_socket);
    engine::IsolationSwitch sw(paths_, user_, store_, api, control);
    try {
        const engine::RecoveryReport r = sw.finish_interrupted(*pending_journal_, lock_);
        recovery_ = {"finished", r.summary(), r.images_pending ? "pending" : ""};
        images_pending_ = images_pending_ && r.images_pending;
        path.reason = r.summary() + path.reason;
        path.summary = "engine " + path.path + " (finished an interrupted isolation switch)";
    } catch (const std::exception& e) {
        // The journal stays: the next start tries again. The engine starts in the mode the
        // switch was going to (prepare_boot); volumes not yet moved are missing from it.
        recovery_ = {"failed",
                     std::string("an interrupted isolation switch could not be finished: ") + e.what() +
                         "; the agent tries again at its next start",
                     ""};
        images_pending_ = false;
        log::error(kEngineServiceLog, "{}", recovery_.message);
        path.reason = recovery_.message + path.reason;
        path.summary = "engine " + path.path + " (an interrupted isolation switch is unfinished)";
    }
    pending_journal_.reset();
}

void EngineService::start_image_reload() {
    images_pending_ = false;
    if (images_worker_.joinable())
        images_worker_.join();
    switching_ = true;  // no new switch while its saved images wait: they share the archive
    if (recovery_.state.empty())
        recovery_ = {"images", "loading the images an interrupted isolation switch saved", ""};
    recovery_.images = "pending";
    images_worker_ = std::thread([this, alive = alive_] {
        std::string outcome;
        try {
            engine::UnixDockerApi probe(paths_.dockerd_socket, 5s);
            const auto deadline = std::chrono::steady_clock::now() + 15min;
            while (!stopping_ && !probe.ping()) {
                if (std::chrono::steady_clock::now() > deadline)
                    throw Error("dockerd did not answer within 15 minutes", paths_.dockerd_socket,
                                "the images load at the agent's next start");
                std::this_thread::sleep_for(250ms);
            }
            if (stopping_)
                return;
            engine::UnixDockerApi api(paths_.dockerd_socket, 600s);
            SupervisedEngine control(io_, supervisor_, paths_.dockerd_socket);
            engine::IsolationSwitch sw(paths_, user_, store_, api, control);
            outcome = sw.load_pending_images() ? "loaded" : "";
            log::info(kEngineServiceLog, "the images an isolation switch saved are loaded");
        } catch (const std::exception& e) {
            outcome = std::string("not loaded: ") + e.what();
            log::error(kEngineServiceLog, "{}", outcome);
        }
        asio::post(io_, [this, alive, outcome] {
            if (!*alive)
                return;
            switching_ = false;
            recovery_.images = outcome;
        });
    });
}

}  // namespace cordon::agent

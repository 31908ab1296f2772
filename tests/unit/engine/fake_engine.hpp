#pragma once
// A fake Docker API and engine control for the isolation switch tests: they record what
// the switch asked for and fail where a test tells them to.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "cordon/atomic_file.hpp"
#include "cordon/engine/isolation_switch.hpp"
#include "cordon/error.hpp"

namespace cordon::engine::testing {

struct FakeApi : DockerApi {
    std::vector<ContainerSummary> running;
    std::vector<std::string> tags;
    std::vector<std::string> stopped;
    int saves = 0, loads = 0;
    bool fail_load = false;
    bool ping() override { return true; }
    std::string version() override { return "20.10.24"; }
    std::vector<ContainerSummary> running_containers() override { return running; }
    void stop_container(const std::string& id, std::chrono::seconds) override { stopped.push_back(id); }
    std::vector<std::string> image_tags() override { return tags; }
    void save_images(const std::vector<std::string>&, const std::string& p) override {
        ++saves;
        cordon::write_file_atomically(p, "tar");
    }
    void load_images(const std::string& p) override {
        if (fail_load) throw cordon::Error("the engine refused the archive", p);
        ++loads;
        EXPECT_EQ(cordon::read_file(p), "tar");
    }
};

struct FakeControl : EngineControl {
    std::string daemon_json;  // when set, each start records the daemon.json it starts with
    std::vector<std::string> calls;
    int fail_ready = 0;  // how many wait_ready calls fail
    void stop_engine() override { calls.push_back("stop"); }
    void start_engine() override {
        calls.push_back(daemon_json.empty() ? "start" : "start:" + cordon::read_file(daemon_json));
    }
    void wait_ready(std::chrono::seconds) override {
        calls.push_back("ready");
        if (fail_ready > 0) {
            --fail_ready;
            throw cordon::Error("dockerd did not answer within 90 s");
        }
    }
};

}  // namespace cordon::engine::testing

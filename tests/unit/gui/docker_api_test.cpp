// The host Docker client's container, image, volume, stats and log calls against
// a fake engine on a unix socket: the requests it sends, what it reads, and the
// error paths (engine down, 404, 409, malformed JSON) as clear cordon::Errors.
#include <gtest/gtest.h>

#include "cordon/error.hpp"
#include "cordon/host/docker/client.hpp"
#include "cordon/host/docker/logs.hpp"
#include "fake_docker_engine.hpp"
#include "gui_test_main.hpp"

using namespace cordon::host::docker;
using cordon::gui::test::httpReply;
using cordon::gui::test::logFrame;
using cordon::gui::test::RoutingFakeEngine;
using cordon::gui::test::tempDir;

namespace {

std::string errorText(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const cordon::Error& e) {
        return e.failure() + " | " + e.hint();
    }
    return "no error";
}

}  // namespace

TEST(DockerApi, ContainerListReadsPortsLabelsAndVolumes) {
    auto dir = tempDir("api-list");
    RoutingFakeEngine engine(dir / "d.sock", [](const std::string&) {
        return httpReply(200,
                         R"([{"Id":"c1","Names":["/web-1"],"Image":"nginx","ImageID":"sha256:ab",
            "State":"running","Status":"Up 5 minutes","Created":7,
            "Ports":[{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
                     {"PrivatePort":443,"Type":"tcp"}],
            "Labels":{"com.docker.compose.project":"shop","n":3},
            "Mounts":[{"Type":"volume","Name":"data"},{"Type":"bind","Source":"/x"}]}])");
    });
    auto list = Client(engine.path()).list_containers();
    ASSERT_EQ(list.size(), 1u);
    const Container& c = list[0];
    EXPECT_EQ(c.image_id, "sha256:ab");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].public_port, 8080);
    EXPECT_EQ(c.ports[0].private_port, 80);
    EXPECT_EQ(c.ports[1].public_port, 0);
    EXPECT_EQ(c.compose_project(), "shop");
    EXPECT_EQ(c.labels.count("n"), 0u);  // not a string: ignored
    ASSERT_EQ(c.volumes.size(), 1u);
    EXPECT_EQ(c.volumes[0], "data");
}

TEST(DockerApi, ActionsSendTheEngineRequests) {
    auto dir = tempDir("api-actions");
    RoutingFakeEngine engine(dir / "d.sock", [](const std::string& line) {
        if (line.rfind("POST /containers/c1/start", 0) == 0)
            return httpReply(304, "");  // already started: done
        return httpReply(204, "");
    });
    Client c(engine.path());
    c.start_container("c1");
    c.stop_container("c1", 5);
    c.restart_container("c1");
    c.remove_container("c1", true);
    c.remove_image("sha256:ab", false);
    c.remove_volume("my data", false);
    auto r = engine.requests();
    ASSERT_EQ(r.size(), 6u);
    EXPECT_EQ(r[0], "POST /containers/c1/start HTTP/1.1");
    EXPECT_EQ(r[1], "POST /containers/c1/stop?t=5 HTTP/1.1");
    EXPECT_EQ(r[2], "POST /containers/c1/restart?t=10 HTTP/1.1");
    EXPECT_EQ(r[3], "DELETE /containers/c1?force=1 HTTP/1.1");
    EXPECT_EQ(r[4], "DELETE /images/sha256:ab?force=0 HTTP/1.1");
    EXPECT_EQ(r[5], "DELETE /volumes/my%20data?force=0 HTTP/1.1");
}

TEST(DockerApi, NotFoundAndConflictSayWhatAndWhy) {
    auto dir = tempDir("api-404");
    RoutingFakeEngine engine(dir / "d.sock", [](const std::string& line) {
        if (line.rfind("DELETE /images", 0) == 0)
            return httpReply(409, R"({"message":"image is being used by running container c1"})");
        return httpReply(404, R"({"message":"No such container: gone"})");
    });
    Client c(engine.path());
    const std::string gone = errorText([&] { c.start_container("gone"); });
    EXPECT_NE(gone.find("HTTP 404"), std::string::npos) << gone;
    EXPECT_NE(gone.find("No such container: gone"), std::string::npos) << gone;
    EXPECT_NE(gone.find("refresh the list"), std::string::npos) << gone;
    const std::string used = errorText([&] { c.remove_image("sha256:ab", false); });
    EXPECT_NE(used.find("being used by running container"), std::string::npos) << used;
    EXPECT_NE(used.find("in use"), std::string::npos) << used;
    EXPECT_NE(errorText([&] { c.inspect_container("gone"); }).find("HTTP 404"), std::string::npos);
}

TEST(DockerApi, MalformedAnswersAreErrorsNotCrashes) {
    auto dir = tempDir("api-bad");
    RoutingFakeEngine engine(dir / "d.sock", [](const std::string& line) {
        if (line.rfind("GET /images", 0) == 0)
            return httpReply(200, R"([{"RepoTags":["x:1"]}])");  // no Id
        if (line.rfind("GET /volumes", 0) == 0)
            return httpReply(200, R"({"Volumes":{"not":"a list"}})");
        if (line.find("/json HTTP") != std::string::npos)
            return httpReply(200, "[1,2]");  // inspect: not an object
        return httpReply(200, "{truncated");
    });
    Client c(engine.path());
    EXPECT_NE(errorText([&] { c.list_images(); }).find("has no \"Id\""), std::string::npos);
    EXPECT_NE(errorText([&] { c.list_volumes(); }).find("not a JSON array"), std::string::npos);
    EXPECT_NE(errorText([&] { c.inspect_container("c1"); }).find("not a JSON object"),
              std::string::npos);
    EXPECT_NE(errorText([&] { c.container_stats("c1"); }).find("is not JSON"), std::string::npos);
}

TEST(DockerApi, EngineDownIsAClearError) {
    auto dir = tempDir("api-down");
    Client c(dir / "nope.sock");
    for (const auto& fn : std::vector<std::function<void()>>{
             [&] { c.start_container("c1"); }, [&] { c.list_images(); }, [&] { c.list_volumes(); },
             [&] { c.container_logs("c1", 10, 0, false); }}) {
        const std::string e = errorText(fn);
        EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
        EXPECT_NE(e.find("start the VM"), std::string::npos) << e;
    }
}

TEST(DockerApi, ImagesAndVolumes) {
    auto dir = tempDir("api-images");
    RoutingFakeEngine engine(dir / "d.sock", [](const std::string& line) {
        if (line.rfind("GET /images/json", 0) == 0)
            return httpReply(200, R"([{"Id":"sha256:0123456789abcdef","RepoTags":["nginx:1",
                "<none>:<none>"],"Size":1000,"Created":9},{"Id":"sha256:ff","RepoTags":null}])");
        if (line.rfind("GET /volumes HTTP", 0) == 0)
            return httpReply(200, R"({"Volumes":[{"Name":"data","Driver":"local",
                "CreatedAt":"2026-12-07T10:00:00Z","Labels":null}],"Warnings":null})");
        return httpReply(500, "");
    });
    Client c(engine.path());
    auto images = c.list_images();
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(images[0].tags, std::vector<std::string>{"nginx:1"});
    EXPECT_EQ(images[0].size, 1000);
    EXPECT_TRUE(images[1].tags.empty());
    EXPECT_EQ(short_id(images[0].id), "0123456789ab");
    auto volumes = c.list_volumes();
    ASSERT_EQ(volumes.size(), 1u);
    EXPECT_EQ(volumes[0].name, "data");
    EXPECT_EQ(volumes[0].driver, "local");
    EXPECT_TRUE(parse_volumes(nlohmann::json::parse(R"({"Volumes":null})")).empty());
}

TEST(DockerApi, StatsGiveCpuShareAndMemoryWithoutCache) {
    auto sample = nlohmann::json::parse(R"({
        "cpu_stats":{"cpu_usage":{"total_usage":3000},"system_cpu_usage":20000,"online_cpus":2},
        "precpu_stats":{"cpu_usage":{"total_usage":1000},"system_cpu_usage":10000},
        "memory_stats":{"usage":5000,"limit":100000,"stats":{"inactive_file":1000}}})");
    ContainerStats s = parse_stats(sample);
    ASSERT_TRUE(s.cpu_percent.has_value());
    EXPECT_DOUBLE_EQ(*s.cpu_percent, 40.0);
    EXPECT_EQ(s.memory_bytes, 4000u);
    EXPECT_EQ(s.memory_limit, 100000u);
    // A first sample (no precpu system time) or a stopped container: unknown, not a crash.
    ContainerStats none =
        parse_stats(nlohmann::json::parse(R"({"cpu_stats":{},"memory_stats":{}})"));
    EXPECT_FALSE(none.cpu_percent);
    EXPECT_FALSE(none.memory_bytes);
    EXPECT_FALSE(parse_stats(nlohmann::json::array()).cpu_percent);
}

TEST(DockerApi, LogsAreDemultiplexed) {
    const std::string body = logFrame(1, "out 1\n") + logFrame(2, "err 2\n");
    EXPECT_EQ(demux_logs(body, "application/vnd.docker.multiplexed-stream"), "out 1\nerr 2\n");
    EXPECT_EQ(demux_logs(body, ""), "out 1\nerr 2\n");  // recognised by its header
    EXPECT_EQ(demux_logs("plain tty text\n", ""), "plain tty text\n");
    EXPECT_EQ(demux_logs(logFrame(1, "abcdef").substr(0, 11), ""), "abc");  // truncated
}

TEST(DockerApi, LogTailShowsEachLineOnce) {
    auto dir = tempDir("api-logs");
    std::atomic<int> calls{0};
    RoutingFakeEngine engine(dir / "d.sock", [&](const std::string&) {
        const int n = calls++;
        std::string body = logFrame(1, "2026-12-07T14:00:00.100000000Z one\n") +
                           logFrame(1, "2026-12-07T14:00:01.200000000Z two\n");
        if (n > 0)
            body += logFrame(2, "2026-12-07T14:00:01.300000000Z three\n");
        return httpReply(200, body, "application/vnd.docker.multiplexed-stream");
    });
    Client c(engine.path());
    LogTail tail("c1", 100);
    EXPECT_EQ(tail.next(c), (std::vector<std::string>{"one", "two"}));
    EXPECT_EQ(tail.next(c), (std::vector<std::string>{"three"}));
    EXPECT_TRUE(tail.next(c).empty());
    auto r = engine.requests();
    ASSERT_EQ(r.size(), 3u);
    EXPECT_NE(r[0].find("tail=100"), std::string::npos) << r[0];
    EXPECT_NE(r[0].find("timestamps=1"), std::string::npos) << r[0];
    EXPECT_NE(r[1].find("tail=all&since=" + std::to_string(stamp_seconds("2026-12-07T14:00:01Z"))),
              std::string::npos)
        << r[1];
}

TEST(DockerApi, StampsAndPathSegments) {
    EXPECT_EQ(stamp_seconds("1970-01-01T00:01:00.000000000Z"), 60);
    EXPECT_EQ(stamp_seconds("yesterday"), -1);
    auto lines = split_stamped_lines("2026-12-07T14:00:00.1Z hello\r\nno stamp\n");
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0].text, "hello");
    EXPECT_EQ(lines[1].stamp, "");
    EXPECT_EQ(lines[1].text, "no stamp");
    EXPECT_EQ(path_segment("a/b?c"), "a%2Fb%3Fc");
}

#pragma once
// The few Docker Engine API calls the agent itself makes (to dockerd's own
// socket, not through the policy proxy): blocking, for a worker thread.
#include <chrono>
#include <string>
#include <vector>

namespace cordon::engine {

struct ContainerSummary {
    std::string id;
    std::string name;
    std::string image;
};

// An interface so the isolation switch's error paths can be unit-tested.
class DockerApi {
public:
    virtual ~DockerApi() = default;
    virtual bool ping() = 0;                                  // false when not answering
    virtual std::string version() = 0;                        // the engine version, e.g. "20.10.24"
    virtual std::vector<ContainerSummary> running_containers() = 0;
    virtual void stop_container(const std::string& id, std::chrono::seconds grace) = 0;
    virtual std::vector<std::string> image_tags() = 0;        // "repo:tag" of every tagged image
    virtual void save_images(const std::vector<std::string>& tags, const std::string& tar_path) = 0;
    virtual void load_images(const std::string& tar_path) = 0;
};

// The real client: HTTP/1.1 over dockerd's unix socket (Boost.Beast). Every
// failure throws cordon::Error with the call, the socket and the engine's message.
class UnixDockerApi final : public DockerApi {
public:
    explicit UnixDockerApi(std::string socket_path, std::chrono::seconds timeout = std::chrono::seconds(60));
    bool ping() override;
    std::string version() override;
    std::vector<ContainerSummary> running_containers() override;
    void stop_container(const std::string& id, std::chrono::seconds grace) override;
    std::vector<std::string> image_tags() override;
    void save_images(const std::vector<std::string>& tags, const std::string& tar_path) override;
    void load_images(const std::string& tar_path) override;

private:
    std::string socket_path_;
    std::chrono::seconds timeout_;
};

}  // namespace cordon::engine

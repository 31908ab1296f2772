// Image and volume calls of the host Docker client.
#include "cordon/host/docker/client.hpp"

namespace cordon::host::docker {

std::vector<Image> Client::list_images() {
    return parse_images(get_json("/images/json"));
}

void Client::remove_image(const std::string& id, bool force) {
    expect_ok("DELETE", "/images/" + path_segment(id) + (force ? "?force=1" : "?force=0"));
}

std::vector<Volume> Client::list_volumes() {
    return parse_volumes(get_json("/volumes"));
}

void Client::remove_volume(const std::string& name, bool force) {
    expect_ok("DELETE", "/volumes/" + path_segment(name) + (force ? "?force=1" : "?force=0"));
}

}  // namespace cordon::host::docker

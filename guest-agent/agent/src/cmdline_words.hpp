#pragma once
// The kernel command line's whitespace-separated words, as the agent's settings receivers
// read them (e.g. "cordon.admin=fw_cfg"), and whether a file is there.
#include <unistd.h>

#include <sstream>
#include <string>
#include <string_view>

namespace cordon::agent {

inline bool cmdline_has_word(const std::string& cmdline, std::string_view wanted) {
    std::istringstream words(cmdline);
    std::string word;
    while (words >> word)
        if (word == wanted)
            return true;
    return false;
}

inline bool path_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

}  // namespace cordon::agent

#include "cordon/mountinfo.hpp"

#include <fstream>
#include <sstream>

namespace cordon {

std::string unescape_mountinfo_path(const std::string& field) {
    auto octal = [](char c) { return c >= '0' && c <= '7'; };
    std::string out;
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] == '\\' && i + 3 < field.size() && octal(field[i + 1]) &&
            octal(field[i + 2]) && octal(field[i + 3])) {
            out.push_back(static_cast<char>(((field[i + 1] - '0') << 6) |
                                            ((field[i + 2] - '0') << 3) | (field[i + 3] - '0')));
            i += 3;
            continue;
        }
        out.push_back(field[i]);
    }
    return out;
}

std::vector<MountEntry> read_mountinfo(const std::string& path) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS"
    std::vector<MountEntry> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string id, parent, dev, root, point, field;
        if (!(words >> id >> parent >> dev >> root >> point))
            continue;
        while (words >> field && field != "-") {
        }
        MountEntry e;
        e.mount_point = unescape_mountinfo_path(point);
        e.device = dev;
        e.root = unescape_mountinfo_path(root);
        if (field == "-")
            words >> e.fs_type >> e.source;
        out.push_back(std::move(e));
    }
    return out;
}

}  // namespace cordon

#include <filesystem>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;
using nlohmann::json;
namespace fs = std::filesystem;

CLI::App* SharesCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand(
        "shares",
        "List, add or remove shared host folders (the shared_folders setting): the VM mounts "
        "them at the same path, and with isolation on containers may bind only from them");
    app_->require_subcommand(0, 1);
    list_ = app_->add_subcommand("list", "Show the shared folders and their owner (the default)");
    add_ = app_->add_subcommand("add", "Share a host folder with the VM");
    add_->add_option("path", path_, "The folder (made absolute)")->required();
    add_->add_flag("--read-only", readonly_, "Containers and the VM may only read it");
    remove_ = app_->add_subcommand("remove", "Stop sharing a folder");
    remove_->add_option("path", path_, "The folder as listed")->required();
    return app_;
}

namespace {
std::string absolute_clean(const std::string& p) {
    if (p == "~" || p.rfind("~/", 0) == 0)
        return p;
    std::string s = fs::absolute(p).lexically_normal().string();
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    return s;
}
}  // namespace

int SharesCommand::run(Context& ctx) {
    LayeredSettings& s = ctx.settings();
    json value = s.get("shared_folders").value;
    if (add_->parsed() || remove_->parsed()) {
        const std::string path = absolute_clean(path_);
        json next = json::array();
        bool found = false;
        for (const auto& e : value) {
            if (e.is_object() && e.value("path", "") == path) {
                found = true;
                if (remove_->parsed())
                    continue;
                next.push_back({{"path", path}, {"readonly", readonly_}});
                continue;
            }
            next.push_back(e);
        }
        if (remove_->parsed() && !found)
            throw HostError(ErrorKind::usage, "that folder is not shared", path,
                            "`vmctl shares list` shows the shared folders");
        if (add_->parsed() && !found)
            next.push_back({{"path", path}, {"readonly", readonly_}});
        s.set_user("shared_folders", next);
        value = s.get("shared_folders").value;
        ctx.out().progress("takes effect at the next `vmctl start` (or `vmctl restart`)");
    }
    const Settings eff = s.effective();
    json out = {{"shared_folders", shared_folders_to_json(eff.shared_folders)},
                {"setting", value},
                {"owner", {{"uid", eff.share_owner.uid}, {"gid", eff.share_owner.gid}}},
                {"source", to_string(s.get("shared_folders").source)}};
    ctx.out().result(out, [&](std::ostream& o) {
        if (eff.shared_folders.empty())
            o << "no shared folders: with isolation on, containers cannot bind host folders\n";
        for (const auto& f : eff.shared_folders)
            o << f.path << (f.readonly ? "  (read-only)" : "") << "\n";
        o << "files containers create there belong to host uid " << eff.share_owner.uid
          << ", gid " << eff.share_owner.gid << " (setting share_owner)\n";
    });
    return Exit::ok;
}

}  // namespace vmctl

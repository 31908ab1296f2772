#include <unistd.h>

#include <iostream>

#include "commands.hpp"

namespace vmctl {

using namespace cordon::host;

CLI::App* DeleteCommand::add(CLI::App& parent) {
    app_ = parent.add_subcommand("delete",
                                 "Stop and remove the VM; asks before removing its data disk");
    app_->add_flag("-y,--yes", yes_,
                   "Remove the data disk (images, volumes, containers) without asking");
    app_->add_flag("--keep-data", keep_data_, "Keep the data disk; remove only the VM definition");
    return app_;
}

int DeleteCommand::run(Context& ctx) {
    Vm vm = ctx.vm();
    const auto disk = vm.paths().data_disk;
    const bool disk_exists = ::access(disk.c_str(), F_OK) == 0;
    bool delete_data = yes_ && !keep_data_;
    if (!yes_ && !keep_data_ && disk_exists) {
        if (ctx.out().json() || !::isatty(STDIN_FILENO)) {
            throw HostError(ErrorKind::confirmation_required,
                            "deleting the VM would remove its data disk", disk.string(),
                            "pass --yes to remove it, or --keep-data to keep it");
        }
        std::cout << "Remove the data disk " << disk.string()
                  << " (every image, container and volume in the VM)? [y/N] " << std::flush;
        std::string answer;
        std::getline(std::cin, answer);
        delete_data = answer == "y" || answer == "Y" || answer == "yes";
        if (!delete_data)
            ctx.out().progress("keeping the data disk");
    }
    bool existed = vm.remove(delete_data);
    ctx.out().result(
        {{"vm", vm.settings().vm_name},
         {"existed", existed},
         {"data_disk_removed", delete_data && disk_exists},
         {"data_disk", disk.string()}},
        [&](std::ostream& o) {
            o << "VM " << vm.settings().vm_name << (existed ? " deleted" : " was not defined");
            if (disk_exists)
                o << (delete_data ? "; data disk removed" : "; data disk kept at " + disk.string());
            o << "\n";
        });
    return Exit::ok;
}

}  // namespace vmctl

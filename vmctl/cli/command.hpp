#pragma once
// One class per vmctl command. add() registers the subcommand and its options;
// run() does the work through the host library and prints through Output.
#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

#include "context.hpp"

namespace vmctl {

class Command {
  public:
    virtual ~Command() = default;
    virtual CLI::App* add(CLI::App& parent) = 0;
    virtual int run(Context& ctx) = 0;
};

// Every command, in --help order.
std::vector<std::unique_ptr<Command>> make_commands();

}  // namespace vmctl

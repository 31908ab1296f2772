#pragma once
// The vmctl commands, one class each.
#include <fmt/format.h>

#include <string>
#include <vector>

#include "../command.hpp"
#include "cordon/host/ports.hpp"

namespace vmctl {

class StartCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;
    static void enforce_locked_isolation(Context& ctx, cordon::host::Vm& vm, bool already_running);

  private:
    CLI::App* app_ = nullptr;
    std::string image_dir_, accelerator_;
    int timeout_ = 600;
};

nlohmann::json start_result_json(const cordon::host::StartResult& r, const cordon::host::Vm& vm);
// Start options with vmctl's progress output ("[ 42%] step text").
cordon::host::StartOptions start_options(Context& ctx, int timeout_s);

class StopCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    int timeout_ = 60;
};

class RestartCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    int timeout_ = 600;
};

class StatusCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
};

class DeleteCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    bool yes_ = false, keep_data_ = false;
};

class LogsCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    std::string source_;
    int tail_ = 200;
};

class ExecCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    std::vector<std::string> argv_;
    int timeout_ = 60;
};

class ShellCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    std::vector<std::string> argv_;
    bool tty_ = false, no_tty_ = false;
};

class AuditCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    int limit_ = 50;
    bool denied_only_ = false;
};

class DockerEnvCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
};

class DockerContextCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    bool use_ = false;
    std::string name_ = "cordon";
};

class IsolationCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    std::string action_;
    bool yes_ = false;
    bool exclusive_ = false;
    bool shared_ = false;
};

nlohmann::json admin_lock_param(cordon::host::LayeredSettings& s);

class SharesCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    CLI::App* list_ = nullptr;
    CLI::App* add_ = nullptr;
    CLI::App* remove_ = nullptr;
    std::string path_;
    bool readonly_ = false;
};

class SettingsCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
    CLI::App* get_ = nullptr;
    CLI::App* set_ = nullptr;
    CLI::App* unset_ = nullptr;
    std::string key_, value_;
};

class PortsCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
};

// Human text of the published ports (ports and status share it).
void print_ports(std::ostream& o, const cordon::host::PortsReport& r);

class VersionCommand final : public Command {
  public:
    CLI::App* add(CLI::App& parent) override;
    int run(Context& ctx) override;

  private:
    CLI::App* app_ = nullptr;
};

}  // namespace vmctl

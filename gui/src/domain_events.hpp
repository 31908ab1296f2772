#pragma once
// libvirt lifecycle events, taken straight from libvirt until cordon_host
// offers them (an interim measure inside gui/; see gui/README.md). One
// process-wide thread runs libvirt's default event loop; each DomainEvents owns
// one connection with a lifecycle callback (all domains) and a close callback
// (libvirtd went away; keepalive detects a dead daemon within ~15 s).
// `notify` is called on the event-loop thread and must be thread-safe.
#include <functional>
#include <memory>
#include <mutex>
#include <string>

namespace cordon::gui {

class DomainEvents {
  public:
    // domain: the domain's name ("" when the connection closed); lifecycle: true
    // for a lifecycle event, false when the connection to libvirtd was lost.
    using Notify = std::function<void(const std::string& domain, bool lifecycle)>;

    explicit DomainEvents(Notify notify);
    ~DomainEvents();
    DomainEvents(const DomainEvents&) = delete;
    DomainEvents& operator=(const DomainEvents&) = delete;

    // (Re)connects to uri and registers the callbacks; blocking (call it from a
    // worker). Returns false and keeps the reason in error() when it cannot.
    bool watch(const std::string& uri);
    // Whether events for uri currently arrive.
    bool watching(const std::string& uri) const;
    std::string error() const;

    struct State;  // shared with the libvirt callbacks

  private:
    void release();
    std::shared_ptr<State> state_;
};

}  // namespace cordon::gui

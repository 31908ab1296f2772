#include "domain_events.hpp"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <thread>

#include "cordon/log.hpp"

namespace cordon::gui {

struct DomainEvents::State {
    std::mutex mu;
    bool alive = true;
    Notify notify;
    virConnectPtr conn = nullptr;
    int callbackId = -1;
    bool closeRegistered = false;
    bool connected = false;
    std::string uri;
    std::string error;
};

namespace {

void ignoreErrors(void*, virErrorPtr) {}

// libvirt has no way to unregister its default event implementation, so the
// loop runs for the life of the process (as libvirt's own examples do).
void ensureEventLoop() {
    static std::once_flag once;
    std::call_once(once, [] {
        virSetErrorFunc(nullptr, ignoreErrors);
        if (virEventRegisterDefaultImpl() < 0) {
            log::warn("gui", "libvirt's event loop cannot start; the state is polled only");
            return;
        }
        std::thread([] {
            for (;;) {
                if (virEventRunDefaultImpl() < 0)
                    std::this_thread::sleep_for(std::chrono::milliseconds(100));
            }
        }).detach();
    });
}

// The callbacks hold a strong reference each; libvirt frees it with freeRef.
using StateRef = std::shared_ptr<DomainEvents::State>;
void freeRef(void* opaque) {
    delete static_cast<StateRef*>(opaque);
}

int onLifecycle(virConnectPtr, virDomainPtr dom, int, int, void* opaque) {
    auto& st = *static_cast<StateRef*>(opaque);
    const char* name = virDomainGetName(dom);
    std::lock_guard lock(st->mu);
    if (st->alive && st->notify)
        st->notify(name ? name : "", true);
    return 0;
}

// The close callback gets a plain State*: libvirt calls it under its own lock
// and not after virConnectUnregisterCloseCallback returns (release() runs that
// before the State goes away), and drivers without close callbacks (test://)
// would never free an owning reference.
void onClose(virConnectPtr, int reason, void* opaque) {
    auto* st = static_cast<DomainEvents::State*>(opaque);
    std::lock_guard lock(st->mu);
    st->connected = false;
    st->error = "the connection to libvirtd closed (reason " + std::to_string(reason) + ")";
    if (st->alive && st->notify)
        st->notify("", false);
}

}  // namespace

DomainEvents::DomainEvents(Notify notify) : state_(std::make_shared<State>()) {
    state_->notify = std::move(notify);
}

DomainEvents::~DomainEvents() {
    {
        std::lock_guard lock(state_->mu);
        state_->alive = false;  // a callback running now sees this and does nothing
    }
    release();
}

// Deregisters and closes outside the lock the callbacks take, so a callback
// waiting for it cannot deadlock against libvirt's own locks.
void DomainEvents::release() {
    virConnectPtr conn = nullptr;
    int id = -1;
    bool closeRegistered = false;
    {
        std::lock_guard lock(state_->mu);
        std::swap(conn, state_->conn);
        std::swap(id, state_->callbackId);
        std::swap(closeRegistered, state_->closeRegistered);
        state_->connected = false;
    }
    if (!conn)
        return;
    if (id >= 0)
        virConnectDomainEventDeregisterAny(conn, id);
    if (closeRegistered)
        virConnectUnregisterCloseCallback(conn, onClose);
    virConnectClose(conn);
}

bool DomainEvents::watch(const std::string& uri) {
    ensureEventLoop();
    // Opening may take a while (a remote daemon): not under the lock the callbacks take.
    release();
    virConnectPtr conn = virConnectOpen(uri.c_str());
    auto fail = [&](const std::string& what) {
        virErrorPtr e = virGetLastError();
        std::lock_guard lock(state_->mu);
        state_->uri = uri;
        state_->error = what + (e && e->message ? e->message : "unknown error");
        return false;
    };
    if (!conn)
        return fail("cannot connect for events: ");
    auto* ref = new StateRef(state_);
    const int id =
        virConnectDomainEventRegisterAny(conn, nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                         VIR_DOMAIN_EVENT_CALLBACK(onLifecycle), ref, freeRef);
    if (id < 0) {
        delete ref;
        bool r = fail("libvirt offers no lifecycle events here: ");
        virConnectClose(conn);
        return r;
    }
    const bool closeRegistered =
        virConnectRegisterCloseCallback(conn, onClose, state_.get(), nullptr) == 0;
    // Pings the daemon so a dead libvirtd closes the connection (and tells us).
    virConnectSetKeepAlive(conn, 5, 3);
    std::lock_guard lock(state_->mu);
    state_->conn = conn;
    state_->callbackId = id;
    state_->closeRegistered = closeRegistered;
    state_->uri = uri;
    state_->connected = true;
    state_->error.clear();
    return true;
}

bool DomainEvents::watching(const std::string& uri) const {
    std::lock_guard lock(state_->mu);
    return state_->connected && state_->uri == uri;
}

std::string DomainEvents::error() const {
    std::lock_guard lock(state_->mu);
    return state_->error;
}

}  // namespace cordon::gui

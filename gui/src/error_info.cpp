#include "error_info.hpp"

#include "cordon/error.hpp"
#include "cordon/host/host_error.hpp"

namespace cordon::gui {

QString ErrorInfo::text() const {
    QString t = what;
    if (!subject.isEmpty())
        t += QStringLiteral("\nOn: ") + subject;
    if (!hint.isEmpty())
        t += QStringLiteral("\nFix: ") + hint;
    return t;
}

ErrorInfo ErrorInfo::make(QString what, QString subject, QString hint, QString kind) {
    ErrorInfo e;
    e.what = std::move(what);
    e.subject = std::move(subject);
    e.hint = std::move(hint);
    e.kind = std::move(kind);
    return e;
}

ErrorInfo ErrorInfo::fromException(const std::exception& ex) {
    ErrorInfo e;
    e.kind = QStringLiteral("generic");
    if (const auto* he = dynamic_cast<const host::HostError*>(&ex)) {
        e.kind = QString::fromStdString(std::string(host::to_string(he->kind())));
        e.rpcCode = QString::fromStdString(he->rpc_code());
    }
    if (const auto* ce = dynamic_cast<const cordon::Error*>(&ex)) {
        e.what = QString::fromStdString(ce->failure());
        e.subject = QString::fromStdString(ce->subject());
        e.hint = QString::fromStdString(ce->hint());
    } else {
        e.what = QString::fromLocal8Bit(ex.what());
    }
    if (e.what.isEmpty())
        e.what = QStringLiteral("unknown error");
    // A guest agent that does not know a method yet: say why and what to do.
    if (e.kind == QLatin1String("rpc") && e.hint.isEmpty() &&
        (e.what.contains(QLatin1String("not found"), Qt::CaseInsensitive) ||
         e.what.contains(QLatin1String("unknown method"), Qt::CaseInsensitive) ||
         e.what.contains(QLatin1String("method_not_found"), Qt::CaseInsensitive))) {
        e.hint = QStringLiteral(
            "the guest agent in this VM image does not offer this yet: rebuild the image with a "
            "newer "
            "agent and restart the VM");
    }
    return e;
}

ErrorInfo ErrorInfo::fromCurrentException() {
    try {
        throw;
    } catch (const std::exception& ex) {
        return fromException(ex);
    } catch (...) {
        return make(QStringLiteral("unknown error (not a std::exception)"));
    }
}

}  // namespace cordon::gui

#pragma once
// A failure as the window shows it: what failed, on what, and how to fix it
// (cordon::Error's three parts), plus the host library's error kind.
#include <QMetaType>
#include <QString>
#include <exception>

namespace cordon::gui {

struct ErrorInfo {
    QString what;
    QString subject;
    QString hint;
    QString
        kind;  // cordon::host::ErrorKind as text ("image", "libvirt_unreachable"...), or "generic"
    // The guest agent's RPC error code when the guest refused ("locked", "busy",
    // "confirmation_required", "unknown_method", ...); empty otherwise.
    QString rpcCode;

    bool empty() const { return what.isEmpty(); }
    // "what\nOn: subject\nFix: hint", leaving out empty parts.
    QString text() const;

    static ErrorInfo fromException(const std::exception& e);
    // For use inside a catch (...) block.
    static ErrorInfo fromCurrentException();
    static ErrorInfo make(QString what, QString subject = {}, QString hint = {},
                          QString kind = QStringLiteral("generic"));
};

}  // namespace cordon::gui

Q_DECLARE_METATYPE(cordon::gui::ErrorInfo)

#include "app_icon.hpp"

#include <QPainter>
#include <QPainterPath>
#include <QPixmap>

#include "vm_controller.hpp"

namespace cordon::gui {
namespace {

// Paints the 64x64 design scaled to size, with an optional dot (bottom right).
QPixmap paint(int size, const QColor& dot) {
    QPixmap pm(size, size);
    pm.fill(Qt::transparent);
    QPainter p(&pm);
    p.setRenderHint(QPainter::Antialiasing);
    p.scale(size / 64.0, size / 64.0);
    p.setPen(Qt::NoPen);
    p.setBrush(QColor(0x1f, 0x3a, 0x5f));
    p.drawRoundedRect(QRectF(2, 2, 60, 60), 12, 12);

    QPainterPath shield;
    shield.moveTo(32, 8);
    shield.lineTo(52, 15);
    shield.lineTo(52, 31);
    shield.cubicTo(52, 43, 44, 51, 32, 56);
    shield.cubicTo(20, 51, 12, 43, 12, 31);
    shield.lineTo(12, 15);
    shield.closeSubpath();
    p.setBrush(QColor(0xe8, 0xee, 0xf5));
    p.drawPath(shield);

    p.setBrush(QColor(0x2f, 0x7d, 0xd1));
    p.drawRoundedRect(QRectF(20, 25, 24, 16), 1.5, 1.5);
    QPen ridge(QColor(0xe8, 0xee, 0xf5), 1.6, Qt::SolidLine, Qt::RoundCap);
    p.setPen(ridge);
    for (int x : {25, 30, 35, 40}) p.drawLine(QPointF(x, 28), QPointF(x, 38));

    QPainterPath rope;
    rope.moveTo(16, 22);
    rope.quadTo(32, 16, 48, 22);
    p.setPen(QPen(QColor(0xd9, 0x82, 0x2b), 2.4, Qt::SolidLine, Qt::RoundCap));
    p.setBrush(Qt::NoBrush);
    p.drawPath(rope);

    if (dot.isValid()) {
        p.setPen(QPen(QColor(0x1f, 0x3a, 0x5f), 3));
        p.setBrush(dot);
        p.drawEllipse(QPointF(50, 50), 11, 11);
    }
    return pm;
}

QIcon build(const QColor& dot) {
    QIcon icon;
    for (int s : {16, 22, 24, 32, 48, 64, 128, 256}) icon.addPixmap(paint(s, dot));
    return icon;
}

}  // namespace

QColor stateColor(VmState state) {
    switch (state) {
        case VmState::running:
            return QColor(0x2e, 0xa0, 0x43);
        case VmState::starting:
        case VmState::stopping:
            return QColor(0xe0, 0xa1, 0x1b);
        case VmState::unavailable:
        case VmState::crashed:
            return QColor(0xd0, 0x3a, 0x2f);
        case VmState::stopped:
        case VmState::unknown:
            return QColor(0x8a, 0x94, 0xa0);
    }
    return {};
}

QIcon appIcon() {
    static const QIcon icon = build(QColor());
    return icon;
}

QIcon stateIcon(VmState state) {
    return build(stateColor(state));
}

}  // namespace cordon::gui

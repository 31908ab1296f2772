#pragma once
// The application icon, drawn with QPainter from the same shapes as
// gui/icons/cordon.svg, with an optional state dot for the tray.
#include <QColor>
#include <QIcon>

namespace cordon::gui {

enum class VmState;

QIcon appIcon();
QIcon stateIcon(VmState state);
QColor stateColor(VmState state);

}  // namespace cordon::gui

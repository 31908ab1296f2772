#pragma once
// GCC 12 reports -Wnull-dereference inside Asio's scheduler after inlining (a false
// positive in Boost 1.74 headers). Include this first in sources that run Asio operations.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif

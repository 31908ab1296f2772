#pragma once
// GCC 12 reports -Wnull-dereference inside Boost 1.74 Asio's scheduler after inlining (a
// false positive in the headers). Included first by sources that run Asio operations.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif

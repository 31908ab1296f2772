#pragma once
// GCC 12 at -O2 reports -Wnull-dereference inside Boost 1.74 Asio's scheduler
// (scheduler.ipp) once handlers are inlined: a false positive that -Werror turns into a
// build failure. Include this header FIRST in a source file that runs Asio operations
// (before any Boost header); it silences that one warning for the rest of the file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wnull-dereference"
#endif

// Every libuv call's return value is checked. uv_require() throws (set-up that cannot go on
// without it); uv_check() logs a failure and returns the code for the caller to act on.
#pragma once

#include <fmt/format.h>
#include <uv.h>

#include "queuer/error.hpp"
#include "queuer/log.hpp"

namespace queuer::detail {

inline void uv_log_failure(int rc, const char* what) {
    log::write(log::Level::Error, fmt::format("libuv: {} failed: {}", what, uv_strerror(rc)));
}

inline int uv_check(int rc, const char* what) {
    if (rc != 0) uv_log_failure(rc, what);
    return rc;
}

inline void uv_require(int rc, const char* what) {
    if (rc != 0)
        throw Error(ErrorKind::Connection,
                    fmt::format("libuv: {} failed: {}", what, uv_strerror(rc)));
}

}  // namespace queuer::detail

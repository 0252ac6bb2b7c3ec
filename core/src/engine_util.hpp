// What every file of the engine (engine, claim, run, finish, schedule, heartbeat,
// notify_listener) shares: the Engine itself, its SQL, small helpers and names. Internal.
#pragma once

#include <spdlog/spdlog.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "engine.hpp"
#include "engine_sql.hpp"
#include "queuer/config.hpp"
#include "queuer/db.hpp"
#include "queuer/error.hpp"

namespace queuer::detail {

template <class T>
T* self(uv_handle_t* h) {
    return static_cast<T*>(h->data);
}

// Exponential backoff from 250 ms up to 30 s.
inline std::chrono::milliseconds backoff(std::chrono::milliseconds prev) {
    using namespace std::chrono_literals;
    if (prev.count() == 0) return 250ms;
    return std::min<std::chrono::milliseconds>(prev * 2, 30s);
}

// The connection, opened (again) when it is missing or broken.
inline db::Connection& ensure(std::unique_ptr<db::Connection>& c, const DatabaseConfig& cfg) {
    if (!c || !c->ok()) c = std::make_unique<db::Connection>(db::Connection::open(cfg));
    return *c;
}

inline void drop_if_broken(std::unique_ptr<db::Connection>& c, const Error& e) {
    if (e.kind() == ErrorKind::Connection || (c && !c->ok())) c.reset();
}

}  // namespace queuer::detail

namespace queuer {

using namespace std::chrono_literals;
using detail::backoff;
using detail::Completion;
using detail::drop_if_broken;
using detail::ensure;
using detail::queue_work;
using detail::self;
using detail::TaskDone;
using steady = std::chrono::steady_clock;

}  // namespace queuer

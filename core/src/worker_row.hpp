// Reading a worker row (shared by client.cpp and admin.cpp).
#pragma once

#include "queuer/db.hpp"
#include "queuer/model.hpp"

#define QUEUER_WORKER_COLS                                                                    \
    "id, rid, name, options, available_tasks, available_next_interval, current_concurrency, " \
    "max_concurrency, status, created_at, updated_at"

namespace queuer::detail {

// A row selected with QUEUER_WORKER_COLS. options: the OnError, plus what queuerd records about
// itself under options.queuerd (host, pid, version, http; see admin::annotate_worker).
Worker worker_from_row(const db::Result& r, int row);

}  // namespace queuer::detail

// Reading worker and job rows (shared by client.cpp and admin.cpp).
#pragma once

#include "queuer/db.hpp"
#include "queuer/model.hpp"

#define QUEUER_WORKER_COLS                                                                    \
    "id, rid, name, options, available_tasks, available_next_interval, current_concurrency, " \
    "max_concurrency, status, created_at, updated_at"

// The master's worker_stale_threshold in seconds, from the settings it records in its row (Go
// shape, nanoseconds), NULL when the row has none; the _OR_DEFAULT form reads 120 then (the
// reference's 2 minutes). The master judges staleness by its own threshold, so everyone asking
// "is this worker stale?" reads this one.
#define QUEUER_MASTER_STALE_SECONDS                                                         \
    "(SELECT NULLIF((settings ->> 'worker_stale_threshold')::float8, 0) / 1e9 FROM master " \
    "WHERE id = 1 AND jsonb_typeof(settings -> 'worker_stale_threshold') = 'number')"
#define QUEUER_MASTER_STALE_SECONDS_OR_DEFAULT "COALESCE(" QUEUER_MASTER_STALE_SECONDS ", 120)"

namespace queuer::detail {

// A row selected with QUEUER_WORKER_COLS. options: the OnError, plus what queuerd records about
// itself under options.queuerd (host, pid, version, http; see admin::annotate_worker).
Worker worker_from_row(const db::Result& r, int row);

// The sealed (encrypted) columns of a job row as bytes; empty when the column is not sealed.
struct SealedColumns {
    std::string parameters, parameters_keyed, results;
    bool any() const {
        return !parameters.empty() || !parameters_keyed.empty() || !results.empty();
    }
};

// A row selected with kJobColumns (client.hpp). Sealed values are not opened: parameters, keyed
// parameters and results are the plaintext columns, and `sealed` (when given) receives the sealed
// ones. Client::row_to_job opens them with its key.
Job job_from_row(const db::Result& r, int row, SealedColumns* sealed);

}  // namespace queuer::detail

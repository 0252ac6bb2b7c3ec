// Reading worker and job rows (shared by client.cpp and admin.cpp).
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

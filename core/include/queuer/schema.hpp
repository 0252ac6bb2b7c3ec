// Versioned schema migrations, applied under an advisory lock so that many processes starting
// at once neither race nor fail. TimescaleDB is used when configured and available.
#pragma once

#include <string>

#include "queuer/config.hpp"
#include "queuer/db.hpp"

namespace queuer {

struct MigrationReport {
    int from_version = 0;
    int to_version = 0;
    bool timescaledb = false;  // job_archive is a hypertable
};

// The newest schema version this build knows.
int schema_version();
MigrationReport migrate(db::Connection& conn, TimescaleMode timescale);

}  // namespace queuer

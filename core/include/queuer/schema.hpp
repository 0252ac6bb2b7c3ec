// Versioned schema migrations, applied under an advisory lock so that many processes starting
// at once neither race nor fail. TimescaleDB is used when configured and available.
#pragma once

#include <string>

#include "queuer/config.hpp"
#include "queuer/db.hpp"
#include "queuer/model.hpp"

namespace queuer {

struct MigrationReport {
    int from_version = 0;
    int to_version = 0;
    bool timescaledb = false;  // job_archive is a hypertable
};

// The newest schema version this build knows.
int schema_version();
MigrationReport migrate(db::Connection& conn, TimescaleMode timescale);

// The form in which this database's job options are written (queuer_settings 'compat', created
// by migration 6 with 'python'; docs/compatibility.md). A schema older than migration 6 reads as
// python. Never aborts a transaction the connection is in.
CompatForm read_compat_form(db::Connection& conn);

struct CompatChange {
    CompatForm from = CompatForm::Python;
    CompatForm to = CompatForm::Python;
    int64_t live_converted = 0;      // rows of job whose options were rewritten
    int64_t archived_converted = 0;  // rows of job_archive whose options were rewritten
};
// Sets the form (migration 6 must have run) and rewrites, in one transaction, the options of
// live and archived jobs whose schedule.start or schedule.interval is in another form, so that
// the clients the database is now set for can read every row.
CompatChange set_compat_form(db::Connection& conn, CompatForm form);

}  // namespace queuer

// The job row, once: its column list (table order) and the archive insert that every path
// moving a job into job_archive uses (the worker's finish, a cancel, the master's sweep).
#pragma once

// Every column of job and job_archive, in table order.
#define QUEUER_JOB_COLUMNS                                                                   \
    "id, rid, worker_id, worker_rid, options, task_name, parameters, parameters_encrypted, " \
    "parameters_keyed, parameters_keyed_encrypted, status, scheduled_at, started_at, "       \
    "schedule_count, attempts, results, results_encrypted, error, created_at, updated_at"

// Copies the rows of SRC (a CTE of deleted job rows, every column) into job_archive, with the
// expressions given for status, started_at, results, results_encrypted and error (they may read
// SRC's columns); updated_at becomes the time of the move.
#define QUEUER_ARCHIVE_INSERT(SRC, STATUS, STARTED_AT, RESULTS, RESULTS_ENC, ERROR)       \
    "INSERT INTO job_archive (" QUEUER_JOB_COLUMNS                                        \
    ")"                                                                                   \
    " SELECT id, rid, worker_id, worker_rid, options, task_name, parameters,"             \
    "  parameters_encrypted, parameters_keyed, parameters_keyed_encrypted, " STATUS       \
    ", scheduled_at, " STARTED_AT ", schedule_count, attempts, " RESULTS ", " RESULTS_ENC \
    ", " ERROR ", created_at, CURRENT_TIMESTAMP FROM " SRC

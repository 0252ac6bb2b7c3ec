/* queuer/plugin.h: the C ABI between queuerd and task plugins (shared objects).
 *
 * How a plugin is loaded (each step only after the previous one succeeded):
 *   1. queuerd dlopen()s the file (RTLD_NOW | RTLD_LOCAL) and looks up the one exported entry
 *      point QUEUER_PLUGIN_ENTRY_SYMBOL ("queuer_plugin_entry"). Define it with
 *      QUEUER_PLUGIN_DEFINE(...) (C) or QUEUER_PLUGIN_CPP(...) (queuer/plugin.hpp).
 *   2. It calls the entry point, which returns a pointer to a static queuer_plugin_def and must
 *      have no other effect. The host reads `size` and the version block (abi_major, abi_minor)
 *      before anything else: a different major is refused, a minor newer than the host's is
 *      refused, an older minor is accepted. The host never reads a field that does not fit
 *      within the `size` the plugin reports.
 *   3. It calls def->init(host, reg) once. During init, and only then, the plugin registers its
 *      tasks and next-interval functions by name with host->register_task and
 *      host->register_next_interval. init returns QUEUER_OK, or QUEUER_ERROR after logging why
 *      (the plugin is then refused and unloaded).
 *   4. Tasks run, concurrently, until the daemon stops; then def->fini() (if set) is called once
 *      and the file is dlclose()d.
 *
 * Memory ownership: nothing allocated by one side is ever freed by the other. Every pointer the
 * host passes to the plugin (strings in queuer_task_call, the job handle, the host table) is
 * owned by the host and valid only for the duration of the call it was passed to (the host
 * table: until fini returns). Every pointer the plugin passes to the host (names, JSON, text) is
 * read or copied before the call returns; the plugin may free or reuse it right after. Strings
 * that cross the boundary carry their length and are UTF-8; the host additionally NUL-terminates
 * the strings it passes.
 *
 * Threading: tasks of one plugin run concurrently on several threads (or, with
 * `worker.isolation: process`, in several child processes, one job at a time each). Every host
 * table function is thread-safe. A queuer_job handle belongs to one running task and is valid
 * only during that task call; do not keep it or use it from threads that outlive the call.
 *
 * Compatibility: queuer_host_api is only ever extended at its end (SQLite's sqlite3ext.h rule)
 * and carries its own size; queuer_plugin_def and queuer_task_call likewise. Changing or
 * removing a field bumps QUEUER_PLUGIN_ABI_MAJOR; appending bumps QUEUER_PLUGIN_ABI_MINOR.
 */
#ifndef QUEUER_PLUGIN_H
#define QUEUER_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QUEUER_PLUGIN_ABI_MAJOR 1
#define QUEUER_PLUGIN_ABI_MINOR 0

/* The one symbol the host looks up in every plugin. */
#define QUEUER_PLUGIN_ENTRY_SYMBOL "queuer_plugin_entry"

/* Status codes returned by plugin functions and host table functions. */
#define QUEUER_OK 0
#define QUEUER_ERROR 1

/* Log levels for queuer_host_api.log. */
#define QUEUER_LOG_DEBUG 0
#define QUEUER_LOG_INFO 1
#define QUEUER_LOG_WARN 2
#define QUEUER_LOG_ERROR 3

/* Size of a buffer that holds a job rid (a canonical UUID) plus its NUL. */
#define QUEUER_RID_BUFSIZE 37

/* A running job. Opaque; owned by the host; valid only during the task call it was passed to. */
typedef struct queuer_job queuer_job;
/* The loader's registration context. Opaque; valid only during def->init. */
typedef struct queuer_plugin_reg queuer_plugin_reg;

typedef struct queuer_host_api queuer_host_api;

/* What a task is called with. Owned by the host, valid during the call. Fields appended in later
 * minors are only present when `size` covers them (check with
 * QUEUER_HAS_FIELD(call, queuer_task_call, field)). */
typedef struct queuer_task_call {
    uint32_t size;               /* sizeof(queuer_task_call) as the host was built */
    const queuer_host_api* host; /* the host table (same pointer init received) */
    const char* rid;             /* the job's rid, NUL-terminated */
    size_t rid_len;
    const char* task_name; /* the name the task was registered under, NUL-terminated */
    size_t task_name_len;
    int32_t attempt;         /* 1 for the first run, 2 for the first retry, ... */
    const char* params_json; /* positional parameters: a JSON array, NUL-terminated */
    size_t params_len;
    const char* keyed_json; /* keyed parameters: a JSON object ("{}" when none), NUL-terminated */
    size_t keyed_len;
    void* user_data; /* the pointer given to register_task */
} queuer_task_call;

/* A task. Returns QUEUER_OK (results set with host->set_result; none set means no result, []) or
 * QUEUER_ERROR (text set with host->set_error; none set means "task failed"). Called on any
 * thread, concurrently with itself. Must not throw C++ exceptions or longjmp out. */
typedef int (*queuer_task_fn)(queuer_job* job, const queuer_task_call* call);

/* A next-interval function: from the previous scheduled time (unix microseconds, UTC) and the
 * number of runs so far, the next scheduled time (unix microseconds, UTC) in *out_next_us.
 * Returns QUEUER_OK, or QUEUER_ERROR (the schedule then fails). Pure, thread-safe, fast: it runs
 * in the daemon process in every isolation mode. */
typedef int (*queuer_next_interval_fn)(int64_t prev_us, int32_t count, int64_t* out_next_us,
                                       void* user_data);

/* The host function table. Owned by the host, valid from init until fini returns. Only ever
 * extended at the end; a plugin that uses an entry added in a later minor checks
 * QUEUER_HAS_FIELD(host, queuer_host_api, entry) first. Every function is thread-safe. */
struct queuer_host_api {
    uint32_t size; /* sizeof(queuer_host_api) as the host was built */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* Registration, valid only during init. `name` (1..100 bytes, NUL-terminated) is copied.
     * user_data is handed back on every call. Returns QUEUER_ERROR on a bad or duplicate name
     * (the reason is logged). */
    int (*register_task)(queuer_plugin_reg* reg, const char* name, queuer_task_fn fn,
                         void* user_data);
    int (*register_next_interval)(queuer_plugin_reg* reg, const char* name,
                                  queuer_next_interval_fn fn, void* user_data);

    /* Logs `len` bytes of `text` through the daemon's log, tagged with the job's rid and task
     * when `job` is not NULL. Copied. */
    void (*log)(queuer_job* job, int level, const char* text, size_t len);

    /* Adds a sub-job whose options record `job` as its parent. params_json (JSON array),
     * keyed_json (JSON object) and options_json (JSON object: on_error, schedule, ...) may be NULL
     * (then [], {} and no options); all are copied. On QUEUER_OK the new job's rid is written,
     * NUL-terminated, to out_rid when out_rid_size >= QUEUER_RID_BUFSIZE (out_rid may be NULL).
     * On QUEUER_ERROR the reason is available through last_error. May block on the database. */
    int (*add_sub_job)(queuer_job* job, const char* task, size_t task_len, const char* params_json,
                       size_t params_len, const char* keyed_json, size_t keyed_len,
                       const char* options_json, size_t options_len, char* out_rid,
                       size_t out_rid_size);

    /* 1 once the job was cancelled, timed out or the worker is stopping; 0 otherwise. Cheap:
     * long tasks should call it often (every few ms) and return early. */
    int (*is_cancelled)(queuer_job* job);

    /* Milliseconds left until the job's timeout (0 once it has passed), or -1 when the job has
     * no timeout. Relative, so it is immune to wall-clock changes. */
    int64_t (*deadline_ms)(queuer_job* job);

    /* Sets the job's results: `len` bytes of JSON text (any JSON value; an array is usual).
     * Copied; a later call replaces an earlier one. QUEUER_ERROR if the text is not JSON. */
    int (*set_result)(queuer_job* job, const char* json, size_t len);

    /* Sets the job's error text (used when the task returns QUEUER_ERROR). Copied. */
    int (*set_error)(queuer_job* job, const char* text, size_t len);

    /* Copies the reason the last failed table call on `job` failed into buf (NUL-terminated,
     * truncated to buf_size - 1) and returns its full length; 0 when there was none. */
    size_t (*last_error)(queuer_job* job, char* buf, size_t buf_size);

    /* ABI 1.0 ends here. Append new entries below this line only. */
};

/* What the entry point returns. Lives in the plugin's static storage; the host reads it. */
typedef struct queuer_plugin_def {
    /* The version block: always first, always these types, checked before anything else. */
    uint32_t size; /* sizeof(queuer_plugin_def) as the plugin was built */
    uint16_t abi_major;
    uint16_t abi_minor;
    /* ABI 1.0 */
    const char* name;    /* short plugin name, for logs and --check */
    const char* version; /* the plugin's own version text */
    /* Registers tasks and functions; QUEUER_OK or QUEUER_ERROR. The host table pointer stays
     * valid until fini returns, so the plugin may keep it. */
    int (*init)(const queuer_host_api* host, queuer_plugin_reg* reg);
    /* Called once before dlclose, after every task has returned. May be NULL. */
    void (*fini)(void);
} queuer_plugin_def;

typedef const queuer_plugin_def* (*queuer_plugin_entry_fn)(void);

/* True when the struct pointed to by `ptr`, of type `type` (whose first field is its uint32_t
 * size), contains `field`: QUEUER_HAS_FIELD(call, queuer_task_call, keyed_json),
 * QUEUER_HAS_FIELD(host, queuer_host_api, deadline_ms). Three arguments. */
#define QUEUER_HAS_FIELD(ptr, type, field) \
    ((ptr)->size >= offsetof(type, field) + sizeof(((type*)0)->field))

#if defined(__GNUC__)
#define QUEUER_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define QUEUER_PLUGIN_EXPORT
#endif

#ifdef __cplusplus
#define QUEUER_PLUGIN_EXTERN_C extern "C"
#else
#define QUEUER_PLUGIN_EXTERN_C
#endif

/* Defines the entry point of a plugin, stamped with the ABI version of this header. Use once,
 * at file scope, in one source file of the plugin:
 *     QUEUER_PLUGIN_DEFINE("myplugin", "1.2.0", my_init, NULL)
 */
#define QUEUER_PLUGIN_DEFINE(NAME, VERSION, INIT, FINI)                                       \
    QUEUER_PLUGIN_EXTERN_C QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry( \
        void);                                                                                \
    QUEUER_PLUGIN_EXTERN_C QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry( \
        void) {                                                                               \
        static const queuer_plugin_def queuer_plugin_def_ = {sizeof(queuer_plugin_def),       \
                                                             QUEUER_PLUGIN_ABI_MAJOR,         \
                                                             QUEUER_PLUGIN_ABI_MINOR,         \
                                                             (NAME),                          \
                                                             (VERSION),                       \
                                                             (INIT),                          \
                                                             (FINI)};                         \
        return &queuer_plugin_def_;                                                           \
    }

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* QUEUER_PLUGIN_H */

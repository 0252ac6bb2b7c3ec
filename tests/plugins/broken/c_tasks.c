/* Tasks written against the C ABI alone, to check the host table from C. */
#include <queuer/plugin.h>
#include <stdio.h>
#include <string.h>

/* Logs a line, then returns [attempt, deadline_ms >= 0, user_data tag]. */
static int c_log(queuer_job* job, const queuer_task_call* call) {
    char buf[128];
    static const char line[] = "hello from c_log";
    int n;
    call->host->log(job, QUEUER_LOG_INFO, line, sizeof line - 1);
    n = snprintf(buf, sizeof buf, "[%d,%s,\"%s\"]", (int)call->attempt,
                 call->host->deadline_ms(job) >= 0 ? "true" : "false",
                 (const char*)call->user_data);
    return call->host->set_result(job, buf, (size_t)n);
}

/* Fails without saying why: the host reports "task failed". */
static int c_error_no_text(queuer_job* job, const queuer_task_call* call) {
    (void)job;
    (void)call;
    return QUEUER_ERROR;
}

/* Hands the host results that are not JSON: set_result refuses them. */
static int c_bad_result(queuer_job* job, const queuer_task_call* call) {
    static const char bad[] = "{not json";
    char why[256];
    size_t n;
    if (call->host->set_result(job, bad, sizeof bad - 1) == QUEUER_OK) return QUEUER_OK;
    n = call->host->last_error(job, why, sizeof why);
    call->host->set_error(job, why, n < sizeof why ? n : sizeof why - 1);
    return QUEUER_ERROR;
}

static int every_minute(int64_t prev_us, int32_t count, int64_t* out_next_us, void* user_data) {
    (void)count;
    (void)user_data;
    *out_next_us = prev_us + 60 * 1000000LL;
    return QUEUER_OK;
}

static int always_fails(int64_t prev_us, int32_t count, int64_t* out_next_us, void* user_data) {
    (void)prev_us;
    (void)count;
    (void)out_next_us;
    (void)user_data;
    return QUEUER_ERROR;
}

static char tag[] = "tagged";

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    if (!QUEUER_HAS_FIELD(host, queuer_host_api, last_error)) return QUEUER_ERROR;
    if (host->register_task(reg, "c_log", c_log, tag) != QUEUER_OK) return QUEUER_ERROR;
    if (host->register_task(reg, "c_error_no_text", c_error_no_text, NULL) != QUEUER_OK)
        return QUEUER_ERROR;
    if (host->register_task(reg, "c_bad_result", c_bad_result, NULL) != QUEUER_OK)
        return QUEUER_ERROR;
    if (host->register_next_interval(reg, "every_minute", every_minute, NULL) != QUEUER_OK)
        return QUEUER_ERROR;
    return host->register_next_interval(reg, "always_fails", always_fails, NULL);
}

QUEUER_PLUGIN_DEFINE("c_tasks", "0.1", init, NULL)

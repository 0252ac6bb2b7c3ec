/* Test plugin: task env_names returns the NAMES (never the values) of the variables in the
 * environment of the process that runs it, as a JSON array; with process isolation that is a
 * task-runner child, whose environment must hold no secret. */
#define _GNU_SOURCE
#include <queuer/plugin.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char** environ;

static int env_names(queuer_job* job, const queuer_task_call* call) {
    size_t cap = 2, len = 0, i;
    char* out;
    int rc;
    char** e;
    for (e = environ; *e; ++e) cap += strlen(*e) + 3;
    out = malloc(cap + 1);
    if (!out) return QUEUER_ERROR;
    out[len++] = '[';
    for (e = environ; *e; ++e) {
        const char* eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        int plain = 1;
        for (i = 0; i < n; ++i)
            if ((*e)[i] == '"' || (*e)[i] == '\\' || (unsigned char)(*e)[i] < 0x20) plain = 0;
        if (!plain) continue;
        if (len > 1) out[len++] = ',';
        out[len++] = '"';
        memcpy(out + len, *e, n);
        len += n;
        out[len++] = '"';
    }
    out[len++] = ']';
    rc = call->host->set_result(job, out, len);
    free(out);
    return rc;
}

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    return host->register_task(reg, "env_names", env_names, NULL);
}

QUEUER_PLUGIN_DEFINE("env_probe", "1.0.0", init, NULL)

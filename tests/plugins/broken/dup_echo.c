/* A plain C plugin that also exports "echo": loading it next to the examples must be refused,
 * naming both files. Alone it works (its echo returns the positional parameters). */
#include <queuer/plugin.h>

static int echo(queuer_job* job, const queuer_task_call* call) {
    return call->host->set_result(job, call->params_json, call->params_len);
}

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    return host->register_task(reg, "echo", echo, NULL);
}

QUEUER_PLUGIN_DEFINE("dup_echo", "0", init, NULL)

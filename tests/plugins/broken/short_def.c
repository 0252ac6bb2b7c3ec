/* A plugin whose descriptor ends before `fini` (as an older, shorter struct would): it loads, and
 * the host must not read the missing field (the garbage after it would crash if called). */
#include <queuer/plugin.h>

static int short_task(queuer_job* job, const queuer_task_call* call) {
    static const char result[] = "[\"short\"]";
    return call->host->set_result(job, result, sizeof result - 1);
}

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    return host->register_task(reg, "short_task", short_task, NULL);
}

static void not_a_fini(void) {
    /* Reached only if the host reads past the reported size. */
    __builtin_trap();
}

QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void);
QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void) {
    static const queuer_plugin_def def = {offsetof(queuer_plugin_def, fini),
                                          QUEUER_PLUGIN_ABI_MAJOR,
                                          0,
                                          "short_def",
                                          "0",
                                          init,
                                          not_a_fini};
    return &def;
}

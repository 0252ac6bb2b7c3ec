/* A plugin built for a future ABI major: the host must refuse it before calling anything. */
#include <queuer/plugin.h>

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    (void)host;
    (void)reg;
    return QUEUER_OK;
}

QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void);
QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void) {
    static const queuer_plugin_def def = {
        sizeof(queuer_plugin_def), 99, 0, "bad_abi", "0", init, NULL};
    return &def;
}

/* A plugin built against a newer minor of this ABI than the host provides: refused. */
#include <queuer/plugin.h>

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    (void)host;
    (void)reg;
    return QUEUER_OK;
}

QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void);
QUEUER_PLUGIN_EXPORT const queuer_plugin_def* queuer_plugin_entry(void) {
    static const queuer_plugin_def def = {
        sizeof(queuer_plugin_def), QUEUER_PLUGIN_ABI_MAJOR, 99, "newer_minor", "0", init, NULL};
    return &def;
}

/* A plugin whose init logs a reason and reports failure. */
#include <queuer/plugin.h>
#include <string.h>

static int init(const queuer_host_api* host, queuer_plugin_reg* reg) {
    static const char why[] = "init_fails: required setting MY_PLUGIN_URL is not set";
    (void)reg;
    host->log(NULL, QUEUER_LOG_ERROR, why, strlen(why));
    return QUEUER_ERROR;
}

QUEUER_PLUGIN_DEFINE("init_fails", "0", init, NULL)

// queuerd's main program: configuration, plugins, the worker, signals, systemd notification.
#pragma once

namespace queuerd {

// `queuerd --config FILE [--check] | --version`. Returns the process exit status.
int daemon_main(int argc, char** argv);

}  // namespace queuerd

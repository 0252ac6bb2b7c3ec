// queuerd-task-runner: the child process of `worker.isolation: process`. queuerd starts it with
// one end of a socketpair as --fd and the plugins to load; it serves jobs until that closes.
#include "isolation.hpp"

int main(int argc, char** argv) {
    return queuerd::task_runner_main(argc, argv);
}

// queuerd entry point; see daemon/src/daemon.cpp.
#include "daemon.hpp"

int main(int argc, char** argv) {
    return queuerd::daemon_main(argc, argv);
}

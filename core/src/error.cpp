// Names of error kinds, for messages and logs.
#include "queuer/error.hpp"

namespace queuer {

const char* to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::Invalid:
            return "invalid";
        case ErrorKind::NotFound:
            return "not found";
        case ErrorKind::Database:
            return "database";
        case ErrorKind::Connection:
            return "connection";
        case ErrorKind::Config:
            return "config";
        case ErrorKind::Crypto:
            return "crypto";
        case ErrorKind::Timeout:
            return "timeout";
        case ErrorKind::Plugin:
            return "plugin";
    }
    return "unknown";
}

}  // namespace queuer

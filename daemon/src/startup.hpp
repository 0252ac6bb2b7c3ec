// queuerd's start-up: which errors met while connecting and preparing the schema are permanent
// (exit 78, EX_CONFIG, never retried) and which are transient (retried with backoff).
#pragma once

#include <optional>
#include <string>

#include "queuer/error.hpp"

namespace queuerd {

inline constexpr int kExitConfig = 78;  // EX_CONFIG: a permanent configuration error at start

// The one-line reason ("authentication refused", "unknown database", "unknown role", "invalid
// connection option", "permission denied", "schema version", "configuration") when `e` cannot go
// away by waiting; nullopt for transient errors (server not answering, connection lost, too many
// connections, the server starting up). libpq does not expose a SQLSTATE for a refused
// connection, so its (English) message is read too.
std::optional<std::string> permanent_reason(const queuer::Error& e);

}  // namespace queuerd

// Which start-up errors are permanent (exit 78): see startup.hpp.
#include "startup.hpp"

#include <cctype>

namespace queuerd {

namespace {

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

}  // namespace

// The one-line reason when an error met at start cannot go away by waiting (wrong password,
// unknown database or role, an invalid connection option, no right to create the schema, a
// schema newer than this build); nullopt for transient errors (server not answering, connection
// lost, too many connections, the server starting up), which are retried.
std::optional<std::string> permanent_reason(const queuer::Error& e) {
    const std::string m = lower(e.what());
    auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
    const std::string& st = e.sqlstate();
    if (e.kind() == queuer::ErrorKind::Config) return std::string("configuration");
    if (st.rfind("28", 0) == 0 || has("password authentication failed") ||
        has("authentication failed") || has("no pg_hba.conf entry") ||
        has("no password supplied") || has("password authentication") || has("sasl authentication"))
        return std::string("authentication refused");
    if (st == "3D000" || (has("database \"") && has("does not exist")))
        return std::string("unknown database");
    if (has("role \"") && has("does not exist")) return std::string("unknown role");
    if (has("invalid sslmode value") || has("invalid connection option") ||
        has("invalid integer value") || has("server does not support ssl") ||
        has("invalid value for parameter"))
        return std::string("invalid connection option");
    if (st == "42501") return std::string("permission denied");
    if (has("newer than this build")) return std::string("schema version");
    return std::nullopt;
}

}  // namespace queuerd

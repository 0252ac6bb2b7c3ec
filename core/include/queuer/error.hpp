// queuer::Error: the one exception type of the library. Every failure carries a kind, a message
// that says what went wrong and to what, and for database failures the SQLSTATE.
#pragma once

#include <stdexcept>
#include <string>

namespace queuer {

enum class ErrorKind {
    Invalid,     // bad input: validation, malformed JSON, unknown task
    NotFound,    // no job/worker with that rid
    Database,    // the server said no (SQLSTATE set)
    Connection,  // the server could not be reached or went away
    Config,      // configuration file or environment
    Crypto,      // malformed key, or ciphertext that does not open with the key
    Timeout,     // a wait ran out
    Plugin,      // plugin load or ABI problem
};

const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
  public:
    Error(ErrorKind kind, std::string message, std::string sqlstate = {})
        : std::runtime_error(std::move(message)), kind_(kind), sqlstate_(std::move(sqlstate)) {}

    ErrorKind kind() const noexcept { return kind_; }
    const std::string& sqlstate() const noexcept { return sqlstate_; }

  private:
    ErrorKind kind_;
    std::string sqlstate_;
};

}  // namespace queuer

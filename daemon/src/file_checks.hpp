// Checks on the files queuerd trusts before it reads or loads them:
//  - check_elf_plugin(): a plugin must be a complete ELF shared object for this machine, checked
//    before dlopen() so that a truncated file is a one-line error instead of a SIGBUS;
//  - insecure_file(): the configuration, the plugins and the secret files must not be changeable
//    (and secrets not readable) by users other than root and the one queuerd runs as.
#pragma once

#include <optional>
#include <string>

namespace queuerd {

// Throws queuer::Error(ErrorKind::Plugin) with one line naming `path` when the file is not an ELF
// shared object, is built for another machine or word size, or is shorter than its ELF headers
// say (a truncated copy: dlopen() would map pages past the end of the file and the first access
// would kill the process with SIGBUS). Does nothing for a path without a '/' (dlopen() searches
// the library path for those) or a file it cannot open (dlopen() then reports why).
void check_elf_plugin(const std::string& path);

enum class FileKind {
    Config,  // the YAML configuration
    Plugin,  // a task plugin (.so): code queuerd runs
    Secret,  // database.password_file, encryption.key_file
};
const char* to_string(FileKind kind);

// nullopt when `path` may be trusted; otherwise one line saying why not. A file may be trusted
// when it and every directory leading to it (on the path as given and on its resolved path) are
// owned by root or by the effective user and are not writable by group or others; a directory
// with the sticky bit (like /tmp) may be writable by others, since only the owner of an entry may
// replace it. A Secret must in addition not be readable by others. A path that does not exist
// yields nullopt (the caller's own error says so).
std::optional<std::string> insecure_file(const std::string& path, FileKind kind);

}  // namespace queuerd

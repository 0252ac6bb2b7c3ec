// The two systemd protocols queuerd speaks, written out instead of linking libsystemd (which
// brings libgcrypt, liblz4, libzstd, liblzma and libcap into every queuerd process: about 1 MB
// of resident memory for three calls). Both are stable, documented interfaces:
// sd_notify(3) ("$NOTIFY_SOCKET", one datagram of "KEY=value" lines) and the journal's native
// protocol (systemd.journal-fields(7), https://systemd.io/JOURNAL_NATIVE_PROTOCOL/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace queuerd::systemd {

// Sends `state` ("READY=1", "STATUS=...", "WATCHDOG=1", lines joined by '\n') to the service
// manager named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Returns 1
// when sent, 0 when there is no service manager to tell ($NOTIFY_SOCKET unset or empty, or an
// address kind this build does not speak), -errno when sending failed.
int notify(std::string_view state);

// `text` with each line break replaced by a space: a value for "STATUS=" that cannot add
// assignments of its own (an error text with "\nREADY=1" in it stays text).
std::string one_line(std::string_view text);

// The watchdog interval systemd asks for, in microseconds ($WATCHDOG_USEC, meant for this
// process when $WATCHDOG_PID is unset or names it); 0 when there is none or it is malformed.
uint64_t watchdog_usec();

// One journal entry: fields as (NAME, value) pairs; a NAME is upper-case letters, digits and '_'
// (not first), the value any bytes. Sent as one datagram to `socket_path`; an entry too large
// for a datagram goes in a sealed memfd passed along it, as journald expects. Returns 0 when
// sent, -errno otherwise (-ENOENT or -ECONNREFUSED: no journald here).
using JournalField = std::pair<std::string_view, std::string_view>;
int journal_send(const std::vector<JournalField>& fields,
                 const char* socket_path = "/run/systemd/journal/socket");

// The wire form of an entry (what journal_send sends): "NAME=value\n" per field, or, for a value
// holding a newline, "NAME\n", its length as 64-bit little-endian, the value and "\n".
std::string journal_entry(const std::vector<JournalField>& fields);

}  // namespace queuerd::systemd

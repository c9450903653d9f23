#pragma once
// Telling the service manager how a daemon is doing (sd_notify(3), Type=notify units): READY=1
// once it serves, STATUS= lines as it changes, STOPPING=1 when it winds down. Every call is a
// no-op when the process was not started with $NOTIFY_SOCKET.

#include <string_view>

namespace aegis::service {

// True when $NOTIFY_SOCKET names a service manager to tell.
[[nodiscard]] bool notify_enabled();

// READY=1 with a STATUS= line.
void notify_ready(std::string_view status);

// STATUS=<status>; a line break in it is sent as a space (the protocol is one line per field).
void notify_status(std::string_view status);

// STOPPING=1 with a STATUS= line.
void notify_stopping(std::string_view status);

}  // namespace aegis::service

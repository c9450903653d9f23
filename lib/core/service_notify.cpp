#include "core/service_notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <string>

namespace aegis::service {

namespace {

void send(std::string_view fields, std::string_view status) {
    if (!notify_enabled()) return;
    std::string message(fields);
    std::string line(status);
    std::replace(line.begin(), line.end(), '\n', ' ');
    message += "STATUS=" + line;
    // 0: keep $NOTIFY_SOCKET, so the later STATUS= updates reach the manager too.
    (void)::sd_notify(0, message.c_str());
}

}  // namespace

bool notify_enabled() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && socket[0] != '\0';
}

void notify_ready(std::string_view status) {
    send("READY=1\n", status);
}

void notify_status(std::string_view status) {
    send("", status);
}

void notify_stopping(std::string_view status) {
    send("STOPPING=1\n", status);
}

}  // namespace aegis::service

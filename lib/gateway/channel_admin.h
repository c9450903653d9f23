#pragma once
// The gateway's channel controls at run time: the set in force, its file, and the two ways an
// operator changes it (aegis-gateway(1) CHANNEL CONTROLS): the file re-read on SIGHUP, and
// POST /channels/disable and /channels/enable on the admin endpoint, which write the file
// before the change takes effect, so a restart keeps it. Every change is logged with who made
// it and counted in the metrics.

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "gateway/channel_controls.h"
#include "gateway/metrics.h"
#include "net/websocket.h"

namespace aegis::gateway {

class ChannelAdmin {
public:
    using Log = std::function<void(std::string_view line)>;

    // Loads the file (missing: nothing disabled). ExitCode::bad_input when it does not parse.
    [[nodiscard]] static Result<ChannelAdmin> open(std::filesystem::path file, GatewayMetrics& metrics, Log log);

    [[nodiscard]] const std::string* disabled_by(std::string_view channel) const {
        return controls_.disabled_by(channel);
    }
    [[nodiscard]] const ChannelControls& controls() const { return controls_; }
    [[nodiscard]] const std::filesystem::path& file() const { return file_; }

    // SIGHUP, in two steps so that a reload of several files applies all or none: read and
    // check the file, then put what was read in force.
    [[nodiscard]] Result<ChannelControls> read() const;
    void adopt(ChannelControls controls, std::string_view source);

    // GET /channels, POST /channels/disable, POST /channels/enable; nullopt for other paths.
    [[nodiscard]] std::optional<net::HttpResponse> answer(const net::HttpRequest& request);

private:
    ChannelAdmin(std::filesystem::path file, GatewayMetrics& metrics, Log log, ChannelControls controls);
    // Writes `next` to the file, then puts it in force; the file and the set never disagree.
    [[nodiscard]] net::HttpResponse change(const net::HttpRequest& request, bool disable);
    void note(std::string_view action, std::string_view pattern, std::string_view source, std::string_view who);

    std::filesystem::path file_;
    GatewayMetrics* metrics_;
    Log log_;
    ChannelControls controls_;
};

}  // namespace aegis::gateway

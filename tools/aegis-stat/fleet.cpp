#include "fleet.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cli/fleet_report.h"
#include "cli/tool.h"
#include "net/http_get.h"

namespace aegis::stat {

namespace {

constexpr std::string_view kTool = "aegis-stat";

}  // namespace

int show_fleet(const std::string& url, bool json, std::chrono::milliseconds timeout) {
    auto address = net::parse_admin_address(url);
    if (!address) {
        auto error = address.take_error();
        error.message = "--fleet: " + error.message;
        return cli::report(kTool, error);
    }
    auto reply = net::http_get(*address, "/sessions", timeout);
    if (!reply) return cli::report(kTool, reply.error());
    if (reply->status != 200) {
        auto body = reply->body.substr(0, reply->body.find('\n'));
        return cli::report(
            kTool,
            make_error(ExitCode::failure, "{} answered /sessions with HTTP {}{}{} (is it a gateway's --admin address?)",
                       url, reply->status, body.empty() ? "" : ": ", body));
    }
    const auto answer = nlohmann::json::parse(reply->body, nullptr, false);
    if (answer.is_discarded())
        return cli::report(kTool, make_error(ExitCode::failure, "{} answered /sessions with something not JSON", url));
    if (json) {
        fmt::print("{}\n", answer.dump(2));
        return 0;
    }
    auto table = cli::fleet_table(answer);
    if (!table) return cli::report(kTool, table.error());
    fmt::print("{}", *table);
    return 0;
}

}  // namespace aegis::stat

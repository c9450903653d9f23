#include "gateway/channel_admin.h"

#include <fmt/format.h>

#include <algorithm>

#include "channel/channel.h"

namespace aegis::gateway {

namespace {

constexpr std::string_view kText = "text/plain; charset=utf-8";

net::HttpResponse reply(int status, std::string body) {
    return net::HttpResponse{status, std::string(kText), std::move(body), {}};
}

std::string_view trimmed(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
}

}  // namespace

ChannelAdmin::ChannelAdmin(std::filesystem::path file, GatewayMetrics& metrics, Log log, ChannelControls controls)
    : file_(std::move(file)), metrics_(&metrics), log_(std::move(log)), controls_(std::move(controls)) {
    metrics_->channels_disabled = controls_.size();
}

Result<ChannelAdmin> ChannelAdmin::open(std::filesystem::path file, GatewayMetrics& metrics, Log log) {
    auto loaded = load_channel_controls(file);
    if (!loaded) return loaded.take_error();
    return ChannelAdmin(std::move(file), metrics, std::move(log), std::move(loaded.value()));
}

Result<ChannelControls> ChannelAdmin::read() const {
    return load_channel_controls(file_);
}

void ChannelAdmin::note(std::string_view action, std::string_view pattern, std::string_view source,
                        std::string_view who) {
    metrics_->count_channel_control(action, source);
    if (log_) log_(fmt::format("channel control: {}d {} by {}", action, pattern, who));
}

void ChannelAdmin::adopt(ChannelControls controls, std::string_view source) {
    for (const auto& pattern : controls.patterns())
        if (!std::binary_search(controls_.patterns().begin(), controls_.patterns().end(), pattern))
            note("disable", pattern, "reload", source);
    for (const auto& pattern : controls_.patterns())
        if (!std::binary_search(controls.patterns().begin(), controls.patterns().end(), pattern))
            note("enable", pattern, "reload", source);
    controls_ = std::move(controls);
    metrics_->channels_disabled = controls_.size();
}

std::optional<net::HttpResponse> ChannelAdmin::answer(const net::HttpRequest& request) {
    const bool listing = request.path == "/channels";
    const bool disabling = request.path == "/channels/disable";
    const bool enabling = request.path == "/channels/enable";
    if (!listing && !disabling && !enabling) return std::nullopt;
    if (listing) {
        if (request.method != "GET") {
            auto refused = reply(405, "GET /channels lists the disabled patterns\n");
            refused.allow = "GET";
            return refused;
        }
        std::string body;
        for (const auto& pattern : controls_.patterns()) body += pattern + '\n';
        return reply(200, std::move(body));
    }
    if (request.method != "POST") {
        auto refused = reply(405, fmt::format("{} wants POST with a channel pattern as the body\n", request.path));
        refused.allow = "POST";
        return refused;
    }
    return change(request, disabling);
}

net::HttpResponse ChannelAdmin::change(const net::HttpRequest& request, bool disable) {
    const auto action = disable ? "disable" : "enable";
    if (!request.local) {
        if (log_)
            log_(fmt::format("channel control: refused {} from {}: the admin endpoint does not listen on loopback",
                             action, request.peer));
        return reply(403, "channel controls change only on an admin endpoint listening on loopback\n");
    }
    const auto pattern = std::string(trimmed(request.body));
    if (auto valid = channel::validate_pattern(pattern); !valid) return reply(400, valid.error().message + '\n');
    auto next = controls_;
    if (disable) {
        if (std::binary_search(controls_.patterns().begin(), controls_.patterns().end(), pattern))
            return reply(200, fmt::format("{} was already disabled\n", pattern));
        if (!next.disable(pattern))
            return reply(400, fmt::format("already {} patterns disabled (the most allowed)\n", kMaxChannelControls));
    } else if (!next.enable(pattern)) {
        return reply(404, fmt::format("{} is not disabled\n", pattern));
    }
    if (auto saved = save_channel_controls(file_, next); !saved) {
        if (log_)
            log_(fmt::format("channel control: cannot {} {} for {}: {}; nothing changed", action, pattern, request.peer,
                             saved.error().message));
        return reply(500, fmt::format("cannot write {}: nothing changed\n", file_.string()));
    }
    controls_ = std::move(next);
    metrics_->channels_disabled = controls_.size();
    note(action, pattern, "admin", fmt::format("admin {}", request.peer));
    return reply(200, fmt::format("{}d {}\n", action, pattern));
}

}  // namespace aegis::gateway

#include "output.h"

#include <nlohmann/json.hpp>

#include "crypto/primitives.h"

namespace aegis::sub {

namespace {

[[nodiscard]] std::string json_line(const ipc::DeliveredMessage& message) {
    nlohmann::json headers = nlohmann::json::array();
    for (const auto& [key, value] : message.headers) headers.push_back({key, value});
    nlohmann::json line{{"id", ipc::to_hex(message.id)},
                        {"channel", message.channel},
                        {"origin_id", message.origin_id},
                        {"origin_fingerprint", message.origin_fingerprint},
                        {"verified", message.verified},
                        {"sequence", message.sequence},
                        {"timestamp_ms", message.timestamp_ms},
                        {"priority", protocol::to_string(message.priority)},
                        {"kind", protocol::to_string(message.kind)},
                        {"headers", headers}};
    if (message.correlation) line["correlation"] = ipc::to_hex(*message.correlation);
    line["payload"] = std::string(as_text(message.payload));
    try {
        return line.dump() + '\n';
    } catch (const nlohmann::json::type_error&) {
        // Not UTF-8: the payload goes as base64 instead.
        line.erase("payload");
        line["payload_base64"] = crypto::base64_encode(message.payload);
        return line.dump() + '\n';
    }
}

}  // namespace

std::string render(const ipc::DeliveredMessage& message, Format format) {
    switch (format) {
        case Format::json:
            return json_line(message);
        case Format::raw_with_channel: {
            std::string out = message.channel + ' ';
            out.append(as_text(message.payload));
            out += '\n';
            return out;
        }
        case Format::raw:
            break;
    }
    std::string out(as_text(message.payload));
    out += '\n';
    return out;
}

bool write_out(std::FILE* out, const std::string& text) {
    return std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0;
}

}  // namespace aegis::sub

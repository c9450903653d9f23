#pragma once
// How aegis-sub writes each message: the raw payload, optionally after "CHANNEL ", or one JSON
// object per line.

#include <cstdio>
#include <string>

#include "ipc/messages.h"

namespace aegis::sub {

enum class Format { raw, raw_with_channel, json };

// The bytes for one message, newline included.
[[nodiscard]] std::string render(const ipc::DeliveredMessage& message, Format format);

// Writes and flushes; false once standard output is closed (a pipeline reader went away).
[[nodiscard]] bool write_out(std::FILE* out, const std::string& text);

}  // namespace aegis::sub

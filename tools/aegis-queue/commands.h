#pragma once
// aegis-queue's commands, one short file each: the typed request a command sends (checked
// before anything is sent) and how the broker's answer is printed.

#include <cstdint>
#include <string_view>

#include "core/result.h"
#include "ipc/client.h"
#include "options.h"

namespace aegis::queue {

struct Command {
    std::string_view name;
    Result<ipc::RequestBody> (*request)(const Options& o);
    // Prints the answer; an error when the answer says the command did nothing.
    Result<void> (*print)(const Options& o, const ipc::Frame& answer, std::uint64_t now_ms);
    std::string_view feature;  // what a broker without it lacks, for the error
    // Asked once connected, before the request is sent; false: nothing is done. May be null.
    Result<bool> (*confirm)(ipc::Client& client, const Options& o, const ipc::Deadline& deadline) = nullptr;
};

extern const Command kList;          // ls.cpp
extern const Command kShow;          // message.cpp
extern const Command kRetry;         // message.cpp
extern const Command kDrop;          // message.cpp
extern const Command kPurge;         // purge.cpp
extern const Command kStats;         // stats.cpp
extern const Command kCursors;       // cursors.cpp
extern const Command kCursorRemove;  // cursors.cpp

inline constexpr std::string_view kQueueFeature = "queue operations";

}  // namespace aegis::queue

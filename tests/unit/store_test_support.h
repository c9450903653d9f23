#pragma once
// Test helpers shared by the store's unit tests (outbound_store_test.cpp, dedup_store_test.cpp,
// durable_inbox_test.cpp, state_database_test.cpp): a temporary directory, numbered message
// ids and queue messages, and the queue opened and drained with checks.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/bytes.h"
#include "protocol/envelope.h"
#include "store/outbound_store.h"

namespace aegis::test::store_support {

struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "aegis-store-test-XXXXXX").string();
        path = ::mkdtemp(pattern.data());
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::permissions(path, std::filesystem::perms::owner_all, ignored);
        std::filesystem::remove_all(path, ignored);
    }
    [[nodiscard]] std::filesystem::path file(const char* name = "queue.db") const { return path / name; }
};

[[nodiscard]] inline protocol::MessageId id_of(std::uint32_t n) {
    protocol::MessageId id{};
    for (int i = 0; i < 4; ++i) id[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
    id[15] = 0xa5;
    return id;
}

[[nodiscard]] inline std::uint32_t number_of(const protocol::MessageId& id) {
    return (std::uint32_t{id[0]} << 24) | (std::uint32_t{id[1]} << 16) | (std::uint32_t{id[2]} << 8) | id[3];
}

[[nodiscard]] inline store::OutboundMessage message(std::uint32_t n, std::string channel = "agent.a1.logs",
                                                    protocol::Priority priority = protocol::Priority::normal,
                                                    std::size_t payload = 10, std::uint64_t expires_ms = 0) {
    store::OutboundMessage out;
    out.id = id_of(n);
    out.channel = std::move(channel);
    out.priority = priority;
    out.payload.assign(payload, static_cast<std::uint8_t>(n));
    out.timestamp_ms = 1'000 + n;
    out.expires_ms = expires_ms;
    return out;
}

[[nodiscard]] inline std::vector<std::uint32_t> numbers(const std::vector<store::OutboundMessage>& messages) {
    std::vector<std::uint32_t> out;
    for (const auto& m : messages) out.push_back(number_of(m.id));
    return out;
}

[[nodiscard]] inline std::vector<std::uint32_t> numbers(const std::vector<store::QueueEntry>& entries) {
    std::vector<std::uint32_t> out;
    for (const auto& e : entries) out.push_back(number_of(e.id));
    return out;
}

[[nodiscard]] inline std::unique_ptr<store::SqliteOutboundQueue> open_queue(const std::filesystem::path& file,
                                                                            store::QueueLimits limits = {},
                                                                            store::QueueOptions options = {}) {
    auto queue = store::SqliteOutboundQueue::open(file, limits, std::move(options));
    INFO((queue ? std::string() : queue.error().message));
    REQUIRE(queue);
    return std::move(*queue);
}

// Jitter pinned to its upper bound, so backoff delays are exact.
[[nodiscard]] inline store::QueueOptions fixed_backoff(std::uint64_t base_ms, std::uint64_t max_ms,
                                                       std::uint32_t max_attempts = 0) {
    store::QueueOptions options;
    options.backoff = {base_ms, max_ms, max_attempts};
    options.jitter = [](std::uint64_t cap) { return cap; };
    return options;
}

// A batch taken at `now`, which must not fail.
[[nodiscard]] inline std::vector<store::OutboundMessage> take(store::SqliteOutboundQueue& queue,
                                                              const store::BatchLimits& limits, std::uint64_t now,
                                                              std::vector<store::OutboundMessage>& expired) {
    auto batch = queue.take_batch(limits, now, expired);
    INFO((batch ? std::string() : batch.error().message));
    REQUIRE(batch);
    return std::move(*batch);
}

inline const store::BatchLimits kOneAtATime{1, 1 << 20};
inline const store::BatchLimits kLargeBatches{1000, 1 << 20};

[[nodiscard]] inline std::vector<std::uint32_t> drain_one_by_one(store::SqliteOutboundQueue& queue, std::uint64_t now) {
    std::vector<std::uint32_t> order;
    std::vector<store::OutboundMessage> expired;
    for (;;) {
        auto batch = take(queue, kOneAtATime, now, expired);
        if (batch.empty()) return order;
        order.push_back(number_of(batch.front().id));
    }
}

[[nodiscard]] inline Bytes file_bytes(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

}  // namespace aegis::test::store_support

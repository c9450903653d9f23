#pragma once
// Finding and following a Redis master through Redis Sentinel (man aegis-gateway(1), CLUSTER):
// the sentinels are asked in turn (the first that answers) for the master's address, and one of
// them is subscribed to +switch-master, so that a failover moves the gateway to the new master.
// Sentinel decides; nothing here votes or promotes.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/redis/connection.h"

namespace aegis::store::redis {

// HOST:PORT[,HOST:PORT...] (a sentinel's port is 26379 when left out; [v6]:PORT); usage error
// otherwise.
[[nodiscard]] Result<std::vector<Endpoint>> parse_sentinels(std::string_view list);
// The answer to SENTINEL get-master-addr-by-name: [HOST, PORT]; nil when the sentinel does not
// monitor that name (an error then, as for anything else).
[[nodiscard]] Result<Endpoint> parse_master_address(const Reply& reply);
// A +switch-master message, "NAME OLD-HOST OLD-PORT NEW-HOST NEW-PORT": the new address when it
// is about `master`; nothing for another master or a message that does not parse.
[[nodiscard]] std::optional<Endpoint> parse_switch_master(std::string_view payload, std::string_view master);
// The answer to ROLE says master; an error naming the role otherwise.
[[nodiscard]] Result<void> check_master_role(const Result<Reply>& reply);

struct SentinelOptions {
    std::vector<Endpoint> sentinels;
    std::string master;                            // the name the sentinels monitor
    std::chrono::milliseconds ask_timeout{1'000};  // one sentinel's answer
    std::chrono::milliseconds retry_min{100};      // asking again while the master is not reached,
    std::chrono::milliseconds retry_max{1'000};    // doubling up to this
};

class Sentinel {
public:
    Sentinel(boost::asio::io_context& io, SentinelOptions options);
    ~Sentinel();
    Sentinel(const Sentinel&) = delete;
    Sentinel& operator=(const Sentinel&) = delete;

    // One round: the sentinels in turn, the first that answers gives the master's address
    // (database 0); ExitCode::failure naming each sentinel's reason when none does.
    void ask(std::function<void(Result<Endpoint>)> done);

    // From now on follows the master, whose address is `current`: `moved` is told every new
    // address (from a +switch-master message, or from asking again), `reached` says whether the
    // connection to the last one told is up. While it is not, the sentinels are asked again
    // after a pause, doubling.
    void follow(Endpoint current, std::function<void(const Endpoint&)> moved, std::function<bool()> reached);
    // Asks again now (the master's connection was lost, or the node turned out a replica).
    void recheck();
    void stop();

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace aegis::store::redis

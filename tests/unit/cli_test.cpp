// The tools' shared logic without processes or sockets: durations, output formats, the
// request/reply convention, payload splitting, durable acknowledgements, status reports.

#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/program_options.hpp>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/ack_tracker.h"
#include "cli/duration.h"
#include "cli/exec_command.h"
#include "cli/message_format.h"
#include "cli/number_option.h"
#include "cli/payload_source.h"
#include "cli/queue_report.h"
#include "cli/receiver.h"
#include "cli/request_reply.h"
#include "cli/status_report.h"
#include "cli/unconfirmed_writes.h"
#include "crypto/primitives.h"
#include "ipc/codec.h"

namespace cli = aegis::cli;
namespace ipc = aegis::ipc;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

[[nodiscard]] ipc::DeliveredMessage sample_message(std::string payload = "hi there") {
    ipc::DeliveredMessage m;
    for (std::size_t i = 0; i < m.id.size(); ++i) m.id[i] = static_cast<std::uint8_t>(i);
    m.channel = "backend.host42.policies";
    m.origin_id = "soc";
    m.origin_fingerprint = "SHA256:abc";
    m.verified = true;
    m.timestamp_ms = 1'700'000'000'123;
    m.kind = aegis::protocol::Kind::event;
    m.headers = {{"content-type", "text/plain"}};
    m.payload.assign(payload.begin(), payload.end());
    return m;
}

// The read end of a pipe that holds `input` (at most a pipe's buffer) and then ends.
[[nodiscard]] int pipe_with(const std::string& input) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
    ::close(fds[1]);
    return fds[0];
}

[[nodiscard]] std::vector<std::string> read_all(const std::string& input, cli::Split split) {
    const int in = pipe_with(input);
    cli::PayloadSource source(in, split, 1024);
    std::vector<std::string> out;
    for (;;) {
        auto next = source.next();
        REQUIRE(next);
        if (!next->has_value()) break;
        out.emplace_back(aegis::as_text(**next));
    }
    ::close(in);
    return out;
}

}  // namespace

TEST_CASE("durations take ms, s, m, h and bare seconds", "[cli]") {
    const auto parse = [](std::string_view text, std::string_view option = "-W") {
        return cli::parse_duration(text, option, milliseconds(1), milliseconds(3'600'000));
    };
    CHECK(*parse("250ms") == milliseconds(250));
    CHECK(*parse("10s") == milliseconds(10'000));
    CHECK(*parse("5m") == milliseconds(300'000));
    CHECK(*parse("1h") == milliseconds(3'600'000));
    CHECK(*parse("1.5") == milliseconds(1'500));
    for (const char* bad : {"", "0", "-1", "10x", "s", "1.2.3", "ms10", "0ms", "61m", "1e9", "99999999999999999999"}) {
        auto parsed = parse(bad, "--ttl");
        INFO(bad);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().exit == aegis::ExitCode::usage);
        CHECK(parsed.error().message.find("--ttl needs a duration from 1ms to 1h") != std::string::npos);
    }
    CHECK(cli::duration_text(milliseconds(250)) == "250ms");
    CHECK(cli::duration_text(milliseconds(90'000)) == "90s");
    CHECK(cli::duration_text(milliseconds(720 * 3'600'000LL)) == "720h");
}

TEST_CASE("a duration range that starts at 0 takes 0", "[cli]") {
    for (const char* zero : {"0", "0s", "0ms", "0.0"}) {
        auto parsed = cli::parse_duration(zero, "--exec-timeout", milliseconds(0), milliseconds(86'400'000));
        INFO(zero);
        REQUIRE(parsed);
        CHECK(*parsed == milliseconds(0));
    }
    auto past = cli::parse_duration("25h", "--exec-timeout", milliseconds(0), milliseconds(86'400'000));
    REQUIRE_FALSE(past);
    CHECK(past.error().message.find("--exec-timeout needs a duration from 0 to 24h") != std::string::npos);
    CHECK(cli::duration_text(milliseconds(0)) == "0");
}

TEST_CASE("whole numbers and seconds are range-checked, never wrapped", "[cli]") {
    CHECK(*cli::parse_whole_number("1", "-n", 1, 10) == 1);
    CHECK(*cli::parse_whole_number("10", "-n", 1, 10) == 10);
    CHECK(*cli::parse_whole_number("18446744073709551615", "-n", 0, UINT64_MAX) == UINT64_MAX);
    for (const char* bad : {"", "-1", "0", "11", "+1", " 1", "1 ", "1.0", "0x1", "x", "18446744073709551616"}) {
        auto parsed = cli::parse_whole_number(bad, "--count", 1, 10);
        INFO(bad);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().exit == aegis::ExitCode::usage);
        CHECK(parsed.error().message == fmt::format("--count needs a whole number from 1 to 10, not '{}'", bad));
    }
    CHECK(*cli::parse_seconds("0", "--heartbeat", 0, 60) == 0);
    CHECK(*cli::parse_seconds("0.5", "--heartbeat", 0, 60) == 0.5);
    CHECK(*cli::parse_seconds(".5", "--heartbeat", 0, 60) == 0.5);
    CHECK(*cli::parse_seconds("60", "--heartbeat", 0, 60) == 60);
    for (const char* bad : {"", "-1", "60.5", "1e3", "inf", "nan", "1.", ".", "1..2", "0x10", "2s"}) {
        auto parsed = cli::parse_seconds(bad, "--heartbeat", 0, 60);
        INFO(bad);
        REQUIRE_FALSE(parsed);
        CHECK(parsed.error().message ==
              fmt::format("--heartbeat needs a number of seconds from 0 to 60, not '{}'", bad));
    }
}

TEST_CASE("a ranged option stops the command line with its name and range", "[cli]") {
    namespace po = boost::program_options;
    std::uint64_t count = 7;
    double wait = 0;
    po::options_description options;
    options.add_options()("count,n", cli::whole_number(&count, 1, 100))("wait", cli::seconds(&wait, 0.5, 10));
    const auto parse = [&](std::vector<const char*> args) {
        args.insert(args.begin(), "tool");
        po::variables_map values;
        po::store(po::parse_command_line(static_cast<int>(args.size()), args.data(), options), values);
        po::notify(values);
    };
    parse({"-n", "42", "--wait", "2.5"});
    CHECK(count == 42);
    CHECK(wait == 2.5);
    try {
        parse({"-n", "-1"});
        FAIL("-n -1 was taken");
    } catch (const po::error& e) {
        CHECK(std::string(e.what()) == "--count needs a whole number from 1 to 100, not '-1'");
    }
    CHECK_THROWS_AS(parse({"--count=101"}), po::error);
    CHECK_THROWS_AS(parse({"--wait", "0.1"}), po::error);
    CHECK_THROWS_AS(parse({"--wait", "x"}), po::error);
}

TEST_CASE("a duration in seconds takes units too, and names its range in seconds", "[cli]") {
    namespace po = boost::program_options;
    milliseconds timeout{10'000};
    po::options_description options;
    options.add_options()("timeout",
                          cli::duration_seconds(&timeout, std::chrono::seconds(1), std::chrono::seconds(300)));
    const auto parse = [&](const char* value) {
        std::vector<const char*> args{"tool", "--timeout", value};
        po::variables_map values;
        po::store(po::parse_command_line(static_cast<int>(args.size()), args.data(), options), values);
        po::notify(values);
    };
    parse("300");
    CHECK(timeout == milliseconds(300'000));
    parse("2m");
    CHECK(timeout == milliseconds(120'000));
    parse("1.5");
    CHECK(timeout == milliseconds(1'500));
    for (const char* bad : {"0", "301", "5m1s", "-1", "x", ""}) {
        try {
            parse(bad);
            FAIL("--timeout " << bad << " was taken");
        } catch (const po::error& e) {
            CHECK(std::string(e.what()).rfind("--timeout needs a number of seconds from 1 to 300", 0) == 0);
        }
    }
}

TEST_CASE("format strings expand every directive and escape", "[cli]") {
    const auto m = sample_message("A\n");
    CHECK(cli::render_format(m, "%c|%p|%o|%f|%l|%k|%%") == "backend.host42.policies|A\n|soc|SHA256:abc|2|event|%");
    CHECK(cli::render_format(m, "%x") == "410a");
    CHECK(cli::render_format(m, "%i") == "000102030405060708090a0b0c0d0e0f");
    CHECK(cli::render_format(m, "%t") == "2023-11-14T22:13:20.123Z");
    CHECK(cli::render_format(m, "a\\tb\\nc\\\\") == "a\tb\nc\\");
    CHECK(cli::render_format(m, "x\\0y") == std::string("x\0y", 3));
    CHECK(cli::validate_format("%c %p \\n \\t \\0 %%"));
    CHECK_FALSE(cli::validate_format("%q"));
    CHECK_FALSE(cli::validate_format("\\q"));
    CHECK_FALSE(cli::validate_format("trailing %"));
}

TEST_CASE("JSON output has every field; non-UTF-8 payloads go as base64", "[cli]") {
    auto m = sample_message();
    m.correlation = m.id;
    const auto line = cli::message_json(m);
    CHECK(line["channel"] == "backend.host42.policies");
    CHECK(line["origin_fingerprint"] == "SHA256:abc");
    CHECK(line["verified"] == true);
    CHECK(line["timestamp"] == "2023-11-14T22:13:20.123Z");
    CHECK(line["timestamp_ms"] == 1'700'000'000'123ULL);
    CHECK(line["headers"]["content-type"] == "text/plain");
    CHECK(line["correlation"] == "000102030405060708090a0b0c0d0e0f");
    CHECK(line["payload"] == "hi there");
    m.payload = {0xff, 0x00, 0xfe};
    const auto binary = cli::message_json(m);
    CHECK_FALSE(binary.contains("payload"));
    CHECK(binary["payload_base64"] == "/wD+");
    CHECK(cli::is_utf8("h\xc3\xa9llo"));
    CHECK_FALSE(cli::is_utf8("\xc0\xaf"));      // overlong
    CHECK_FALSE(cli::is_utf8("\xed\xa0\x80"));  // a surrogate
    CHECK_FALSE(cli::is_utf8("\xe2\x82"));      // cut short
}

TEST_CASE("render_message ends each message with the terminator", "[cli]") {
    const auto m = sample_message();
    CHECK(cli::render_message(m, {cli::Style::payload, "", '\n'}) == "hi there\n");
    CHECK(cli::render_message(m, {cli::Style::channel_and_payload, "", '\0'}) ==
          std::string("backend.host42.policies hi there\0", 33));
    CHECK(cli::render_message(m, {cli::Style::format, "%o:%p", '\n'}) == "soc:hi there\n");
    CHECK(json::parse(cli::render_message(m, {cli::Style::json, "", '\n'}))["origin_id"] == "soc");
}

TEST_CASE("the default reply channel follows the convention", "[cli]") {
    CHECK(*cli::default_reply_channel("backend.host42.exec") == "agent.host42.exec.reply");
    CHECK(*cli::default_reply_channel("agent.host42.health.check") == "backend.host42.health.check.reply");
    CHECK(cli::default_reply_channel("backend.host42").error().exit == aegis::ExitCode::usage);
    CHECK_FALSE(cli::default_reply_channel("other.x.y"));
}

TEST_CASE("a request gets a correlated reply; a failure is flagged", "[cli]") {
    auto request = sample_message();
    CHECK_FALSE(cli::reply_for(request, 0));  // an event asks for no reply
    request.kind = aegis::protocol::Kind::request;
    CHECK_FALSE(cli::reply_for(request, 0));  // no reply-to
    request.headers.emplace_back("reply-to", "agent.host42.exec.reply");
    const auto ok = cli::reply_for(request, 0);
    REQUIRE(ok);
    CHECK(ok->channel == "agent.host42.exec.reply");
    CHECK(ok->kind == aegis::protocol::Kind::reply);
    CHECK(ok->correlation == request.id);
    CHECK(ok->headers.empty());
    const auto failed = cli::reply_for(request, 3);
    REQUIRE(failed);
    CHECK(cli::header_value(failed->headers, "error") == "exit 3");
}

TEST_CASE("a request whose command timed out gets an error reply naming the timeout", "[cli]") {
    auto request = sample_message();
    request.kind = aegis::protocol::Kind::request;
    request.headers.emplace_back("reply-to", "agent.host42.exec.reply");
    const auto timed_out = cli::reply_with_error(request, "timed out after 1s (--exec-timeout)");
    REQUIRE(timed_out);
    CHECK(timed_out->correlation == request.id);
    CHECK(cli::header_value(timed_out->headers, "error") == "timed out after 1s (--exec-timeout)");
    const auto ok = cli::reply_with_error(request, "");
    REQUIRE(ok);
    CHECK(ok->headers.empty());
}

TEST_CASE("payloads split by line or NUL, or whole", "[cli]") {
    CHECK(read_all("a\nb\n\nc", cli::Split::lines) == std::vector<std::string>{"a", "b", "", "c"});
    CHECK(read_all(std::string("x\0y z\0", 6), cli::Split::nul) == std::vector<std::string>{"x", "y z"});
    CHECK(read_all("a\nb\n", cli::Split::whole) == std::vector<std::string>{"a\nb\n"});
    CHECK(read_all("", cli::Split::whole) == std::vector<std::string>{""});
    CHECK(read_all("", cli::Split::lines).empty());
    CHECK(read_all("last line has no newline", cli::Split::lines) ==
          std::vector<std::string>{"last line has no newline"});
    for (const auto split : {cli::Split::whole, cli::Split::lines}) {
        const int in = pipe_with(std::string(2000, 'x'));  // over the limit of 1024
        cli::PayloadSource source(in, split, 1024);
        auto next = source.next();
        ::close(in);
        REQUIRE_FALSE(next);
        CHECK(next.error().exit == aegis::ExitCode::bad_input);
    }
    CHECK(cli::parse_header_option("a=b=c")->second == "b=c");
    CHECK_FALSE(cli::parse_header_option("novalue"));
    CHECK_FALSE(cli::parse_header_option("=x"));
}

TEST_CASE("payloads: before_wait runs only when no record is buffered and the input is quiet", "[cli]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    REQUIRE(::write(fds[1], "a\nb\n", 4) == 4);
    cli::PayloadSource source(fds[0], cli::Split::lines, 1024);
    int waits = 0;
    source.before_wait([&]() -> aegis::Result<void> {
        ++waits;
        // The writer comes back only now, with the last line and the end.
        REQUIRE(::write(fds[1], "c", 1) == 1);
        ::close(fds[1]);
        return {};
    });
    CHECK(aegis::as_text(**source.next()) == "a");
    CHECK(aegis::as_text(**source.next()) == "b");
    CHECK(waits == 0);  // both came in one read
    CHECK(aegis::as_text(**source.next()) == "c");
    CHECK(waits == 1);
    auto end = source.next();
    REQUIRE(end);
    CHECK_FALSE(end->has_value());
    CHECK(waits == 1);  // the end is readable: no wait
    ::close(fds[0]);

    REQUIRE(::pipe(fds) == 0);
    cli::PayloadSource failing(fds[0], cli::Split::lines, 1024);
    failing.before_wait([] { return aegis::Result<void>(aegis::make_error(aegis::ExitCode::unreachable, "gone")); });
    auto failed = failing.next();  // the hook's error, not a wait for input that never comes
    REQUIRE_FALSE(failed);
    CHECK(failed.error().message == "gone");
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("durable acknowledgements advance over the handled prefix only", "[cli]") {
    cli::AckTracker acks;
    acks.received(1);
    acks.received(2);
    acks.received(3);
    CHECK_FALSE(acks.handled(2));
    CHECK(acks.handled(1) == 2u);
    CHECK(acks.handled(3) == 3u);
}

TEST_CASE("written but unconfirmed messages are named until the broker confirms them", "[cli]") {
    cli::UnconfirmedWrites writes;
    CHECK(writes.empty());
    writes.written(7, "aa");
    CHECK(writes.describe() == "1 message (cursor_seq 7, id aa)");
    writes.written(8, "bb");
    writes.written(9, "cc");
    CHECK(writes.describe() == "3 messages (cursor_seq 7-9, ids aa bb cc)");
    writes.confirmed(8);
    CHECK(writes.describe() == "1 message (cursor_seq 9, id cc)");
    for (std::uint64_t seq = 10; seq < 30; ++seq) writes.written(seq, "id");
    CHECK(writes.size() == 21);
    CHECK(writes.describe() == "21 messages (cursor_seq 9-29)");
    writes.confirmed(29);
    CHECK(writes.empty());
}

TEST_CASE("commands get the payload and the message's environment", "[cli]") {
    auto m = sample_message("input text");
    auto result = cli::run_command("cat; echo \" $AEGIS_CHANNEL $AEGIS_ORIGIN_ID $AEGIS_HEADER_CONTENT_TYPE\"; exit 3",
                                   "input text", cli::message_environment(m));
    REQUIRE(result);
    CHECK(result->exit_status == 3);
    CHECK(result->output == "input text backend.host42.policies soc text/plain\n");
}

namespace {

// True once no process has `pid` (an orphan is reaped by init soon after it dies).
[[nodiscard]] bool gone_within(pid_t pid, milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
        std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
}

// The pids a command printed, one per line ("$$" and "$!").
[[nodiscard]] std::vector<pid_t> printed_pids(const std::string& output) {
    std::vector<pid_t> pids;
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);) pids.push_back(static_cast<pid_t>(std::stol(line)));
    return pids;
}

}  // namespace

TEST_CASE("a command past its timeout is ended with its whole process group", "[cli]") {
    cli::CommandLimits limits;
    limits.timeout = milliseconds(300);
    limits.grace = milliseconds(500);
    const auto started = std::chrono::steady_clock::now();
    auto result = cli::run_command("echo $$; sleep 300 & echo $!; wait", "", {}, limits);
    const auto took = std::chrono::steady_clock::now() - started;
    REQUIRE(result);
    CHECK(result->timed_out);
    CHECK_FALSE(result->stopped);
    CHECK(took < std::chrono::seconds(3));
    const auto pids = printed_pids(result->output);
    REQUIRE(pids.size() == 2);
    CHECK(::getpgid(pids[1]) != ::getpgrp());         // not in this process's group (if it still ran)
    CHECK(gone_within(pids[1], milliseconds(3000)));  // the background sleep too
}

TEST_CASE("a command that ignores SIGTERM is killed after the grace period", "[cli]") {
    cli::CommandLimits limits;
    limits.timeout = milliseconds(200);
    limits.grace = milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    auto result = cli::run_command("trap '' TERM; sleep 300 & echo $!; wait; wait", "", {}, limits);
    REQUIRE(result);
    CHECK(result->timed_out);
    CHECK(result->exit_status == 128 + SIGKILL);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(3));
    const auto pids = printed_pids(result->output);
    REQUIRE(pids.size() == 1);
    CHECK(gone_within(pids[0], milliseconds(3000)));
}

TEST_CASE("what a finished command left running in its group is ended", "[cli]") {
    // The shell exits at once; the sleep it started keeps its standard output open.
    const auto started = std::chrono::steady_clock::now();
    auto result = cli::run_command("sleep 300 & echo $!", "", {}, {});
    REQUIRE(result);
    CHECK_FALSE(result->timed_out);
    CHECK(result->exit_status == 0);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
    const auto pids = printed_pids(result->output);
    REQUIRE(pids.size() == 1);
    CHECK(gone_within(pids[0], milliseconds(3000)));
}

TEST_CASE("a stopped pool ends its running commands and starts no more", "[cli]") {
    cli::CommandPool pool("echo $$; sleep 300 & echo $!; wait", 2);
    pool.start(sample_message("one"));
    pool.start(sample_message("two"));
    std::this_thread::sleep_for(milliseconds(200));
    const auto started = std::chrono::steady_clock::now();
    pool.stop_all();
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    CHECK(pool.running() == 0);
    pool.start(sample_message("three"));  // ignored: the pool is stopping
    CHECK(pool.running() == 0);
    const auto finished = pool.take_finished(milliseconds(0));
    REQUIRE(finished.size() == 2);
    for (const auto& each : finished) {
        REQUIRE(each.result);
        CHECK(each.result->stopped);
        for (const auto pid : printed_pids(each.result->output)) CHECK(gone_within(pid, milliseconds(3000)));
    }
}

TEST_CASE("a hung command holds up the next one only until its timeout", "[cli]") {
    cli::CommandPool pool("read -r x; if [ \"$x\" = hang ]; then sleep 300; fi; echo \"$x\"", 1, milliseconds(300));
    const auto started = std::chrono::steady_clock::now();
    pool.start(sample_message("hang\n"));
    pool.start(sample_message("quick\n"));  // waits for the slot
    std::vector<cli::CommandPool::Finished> done;
    while (done.size() < 2 && std::chrono::steady_clock::now() - started < std::chrono::seconds(10)) {
        for (auto& finished : pool.take_finished(milliseconds(100))) done.push_back(std::move(finished));
    }
    REQUIRE(done.size() == 2);
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(4));
    REQUIRE(done[0].result);
    CHECK(done[0].result->timed_out);
    REQUIRE(done[1].result);
    CHECK_FALSE(done[1].result->timed_out);
    CHECK(done[1].result->output == "quick\n");
}

TEST_CASE("status: stable names, human text, Prometheus and checks", "[cli]") {
    const std::uint64_t now = 1'700'000'100'000;
    json status{{"state", "connected"},
                {"url", "ws://127.0.0.1:1/"},
                {"server_fingerprint", "SHA256:gw"},
                {"assigned_id", "host42"},
                {"role", "agent"},
                {"session_age_s", 65},
                {"reconnects", 1},
                {"rekeys", 0},
                {"rtt_ms", 2},
                {"messages_in", 3},
                {"messages_out", 4},
                {"bytes_in", 100},
                {"bytes_out", 2048},
                {"queue", {{"waiting", 5}, {"in_flight", 1}}},
                {"subscriptions", {"backend.host42.>"}}};
    const auto stable = cli::stable_status(status, now);
    CHECK(stable["backend_fingerprint"] == "SHA256:gw");
    CHECK(stable["queue"]["dead"].is_null());
    CHECK(stable["queue"]["oldest_age_s"].is_null());
    const auto human = cli::human_status(stable);
    CHECK(human.find("connected (session 1m05s)") != std::string::npos);
    CHECK(human.find("5 waiting, 1 in flight, unknown dead, oldest unknown") != std::string::npos);
    CHECK(human.find("backend.host42.>") != std::string::npos);
    const auto metrics = cli::prometheus_status(stable);
    CHECK(metrics.find("# TYPE aegis_broker_queue_waiting gauge\naegis_broker_queue_waiting 5\n") != std::string::npos);
    CHECK(metrics.find("aegis_broker_rtt_seconds 0.002") != std::string::npos);
    CHECK(metrics.find("aegis_broker_queue_dead") == std::string::npos);

    cli::CheckThresholds t;
    CHECK(cli::evaluate_check(stable, t).state == cli::CheckState::ok);
    CHECK(cli::evaluate_check(stable, t).line.rfind("AEGIS OK - connected, queue 6 | queue=6;;;0", 0) == 0);
    t.warn_queue = 5;
    CHECK(cli::evaluate_check(stable, t).state == cli::CheckState::warning);
    t.crit_queue = 5;
    CHECK(cli::evaluate_check(stable, t).state == cli::CheckState::critical);

    status["state"] = "backing_off";
    status["last_heartbeat_ms"] = now - 30'000;
    status["next_attempt_ms"] = now + 2'000;
    status["queue"] = {{"waiting", 0}, {"in_flight", 0}, {"dead", 2}, {"oldest_waiting_ms", 0}};
    auto no_heartbeat = status;
    no_heartbeat.erase("last_heartbeat_ms");
    cli::CheckThresholds strict;
    strict.crit_disconnected_s = 1;
    const auto unknown_time = cli::evaluate_check(cli::stable_status(no_heartbeat, now), strict);
    CHECK(unknown_time.state == cli::CheckState::warning);
    CHECK(unknown_time.line.find("backing_off for an unknown time") != std::string::npos);
    const auto down = cli::stable_status(status, now);
    CHECK(cli::human_status(down).find("backing off (next attempt in 2s)") != std::string::npos);
    cli::CheckThresholds d;
    CHECK(cli::evaluate_check(down, d).state == cli::CheckState::warning);
    d.crit_disconnected_s = 60;
    CHECK(cli::evaluate_check(down, d).state == cli::CheckState::warning);
    d.crit_disconnected_s = 10;
    CHECK(cli::evaluate_check(down, d).state == cli::CheckState::critical);
    CHECK(cli::unknown_check("no broker").line == "AEGIS UNKNOWN - no broker");
}

TEST_CASE("status: disconnected since the session was lost, dead-letter thresholds, broker down", "[cli]") {
    const std::uint64_t now = 1'700'000'100'000;
    json status{{"state", "backing_off"},
                {"last_heartbeat_ms", now - 60'000},  // the heartbeat is older than the disconnect
                {"disconnected_since_ms", now - 2'000},
                {"queue", {{"waiting", 0}, {"in_flight", 0}, {"dead", 2}, {"oldest_waiting_ms", 0}}}};
    const auto down = cli::stable_status(status, now);
    CHECK(down["disconnected_s"] == 2.0);
    cli::CheckThresholds t;
    t.crit_disconnected_s = 10;
    auto outcome = cli::evaluate_check(down, t);
    CHECK(outcome.state == cli::CheckState::warning);
    CHECK(outcome.line.rfind("AEGIS WARNING - backing_off for 2s, queue 0, oldest 0s, dead 2 |", 0) == 0);
    status.erase("disconnected_since_ms");  // a broker that does not say: from the last heartbeat
    CHECK(cli::stable_status(status, now)["disconnected_s"] == 60.0);

    status["state"] = "connected";
    const auto up = cli::stable_status(status, now);
    cli::CheckThresholds dead;
    CHECK(cli::evaluate_check(up, dead).state == cli::CheckState::ok);
    dead.warn_dead = 2;
    CHECK(cli::evaluate_check(up, dead).state == cli::CheckState::ok);
    dead.warn_dead = 1;
    outcome = cli::evaluate_check(up, dead);
    CHECK(outcome.state == cli::CheckState::warning);
    CHECK(outcome.line.find(" dead=2;1;;0") != std::string::npos);
    dead.crit_dead = 1;
    CHECK(cli::evaluate_check(up, dead).state == cli::CheckState::critical);
    json no_dead = status;
    no_dead["queue"].erase("dead");
    CHECK(cli::evaluate_check(cli::stable_status(no_dead, now), dead).state == cli::CheckState::unknown);

    CHECK(cli::validate_thresholds(dead));
    dead.warn_dead = 3;
    REQUIRE_FALSE(cli::validate_thresholds(dead));
    CHECK(cli::validate_thresholds(dead).error().message == "--warn-dead (3) is above --crit-dead (1)");
    cli::CheckThresholds age;
    age.warn_age_s = 10;
    age.crit_age_s = 5;
    CHECK(cli::validate_thresholds(age).error().message == "--warn-age (10) is above --crit-age (5)");
    age.crit_age_s = 10;
    CHECK(cli::validate_thresholds(age));

    CHECK(cli::prometheus_broker_down() ==
          "# HELP aegis_broker_up 1 when the broker answered.\n# TYPE aegis_broker_up gauge\naegis_broker_up 0\n");
}

TEST_CASE("queue reports and unsupported ops", "[cli]") {
    json messages = json::array({{{"message_id", "00112233445566778899aabbccddeeff"},
                                  {"channel", "agent.h.x"},
                                  {"priority", "normal"},
                                  {"attempts", 2},
                                  {"state", "dead"},
                                  {"dead_reason", "expired"},
                                  {"bytes", 5},
                                  {"created_ms", 1000}}});
    const auto table = cli::queue_table(messages, 61'000);
    CHECK(table.find("00112233445566778899aabbccddeeff") != std::string::npos);
    CHECK(table.find("agent.h.x (expired)") != std::string::npos);
    CHECK(cli::queue_table(json::array(), 0) == "no messages\n");
    const aegis::Bytes binary{0xff, 0x01};
    CHECK(cli::queue_message_json(json::object(), binary)["payload_base64"] == "/wE=");
    const json answer{{"id", 4}, {"ok", true}, {"count", 1}, {"expired", 2}};
    CHECK(cli::answer_fields(answer) == json{{"count", 1}, {"expired", 2}});
    CHECK(cli::queue_count_text("retry", cli::answer_fields(answer)) ==
          "retrying 1 message\n2 expired messages not retried: they would expire again at once (give --ttl "
          "DURATION)\n");
    CHECK(cli::queue_count_text("purge", json{{"count", 3}}) == "purged 3 messages\n");
    const auto explained = cli::explain_unsupported(aegis::Error{aegis::ExitCode::usage, "unknown op 'queue.list'", 0},
                                                    "queue operations");
    CHECK(explained.exit == aegis::ExitCode::failure);
    CHECK(explained.message.find("does not support queue operations") != std::string::npos);
}

TEST_CASE("the command pool runs each message's command and hands back every result", "[cli]") {
    std::vector<cli::CommandPool::Finished> done;
    {
        cli::CommandPool pool("cat; echo \" $AEGIS_KIND\"", 2);
        for (const char* payload : {"one", "two", "three"}) pool.start(sample_message(payload));
        while (done.size() < 3) {
            for (auto& finished : pool.take_finished(milliseconds(100))) done.push_back(std::move(finished));
        }
        CHECK(pool.running() == 0);
    }
    std::vector<std::string> outputs;
    for (const auto& finished : done) {
        REQUIRE(finished.result);
        CHECK(finished.result->exit_status == 0);
        CHECK(finished.result->output == std::string(aegis::as_text(finished.message.payload)) + " event\n");
        outputs.push_back(finished.result->output);
    }
    std::sort(outputs.begin(), outputs.end());
    CHECK(outputs == std::vector<std::string>{"one event\n", "three event\n", "two event\n"});
}

TEST_CASE("status: messages per channel, and why a channel's messages wait", "[cli]") {
    const std::uint64_t now = 1'700'000'100'000;
    json status = json::parse(R"({"state": "connected", "queue": {"waiting": 5000, "in_flight": 0},
        "channels": [
          {"channel": "agent.host42.logs", "published": 12, "received": 0,
           "held": {"reason": "channel_disabled",
                    "message": "agent.host42.logs matches the disabled pattern agent.*.logs",
                    "since_ms": 1699999995000, "next_attempt_ms": 1700000101000}},
          {"channel": "backend.all.policies", "published": 0, "received": 7}]})");
    const auto stable = cli::stable_status(status, now);
    REQUIRE(stable["channels"].size() == 2);
    CHECK(stable["channels"][0]["channel"] == "agent.host42.logs");
    CHECK(stable["channels"][0]["published"] == 12);
    CHECK(stable["channels"][0]["held"]["reason"] == "channel_disabled");
    CHECK(stable["channels"][1]["received"] == 7);
    CHECK(stable["channels"][1]["held"].is_null());
    const auto human = cli::human_status(stable);
    CHECK(human.find("        12           0  agent.host42.logs (waiting: channel_disabled: agent.host42.logs "
                     "matches the disabled pattern agent.*.logs)\n") != std::string::npos);
    CHECK(human.find("         0           7  backend.all.policies\n") != std::string::npos);
    // A broker that reports no channels: an empty list, and no table.
    const auto older = cli::stable_status(json{{"state", "connected"}}, now);
    CHECK(older["channels"] == json::array());
    CHECK(cli::human_status(older).find("channels:") == std::string::npos);

    json waiting = json::array({{{"message_id", "00112233445566778899aabbccddeeff"},
                                 {"channel", "agent.h.logs"},
                                 {"state", "waiting"},
                                 {"held", {{"reason", "channel_disabled"}, {"message", "disabled"}}}}});
    CHECK(cli::queue_table(waiting, 0).find("agent.h.logs (waiting: channel_disabled: disabled)") != std::string::npos);
}

namespace {

// A broker stand-in on a Unix socket for one client: answers hello, sends `events`, then
// answers every ack and records its position, until the client hangs up.
class FakeBroker {
public:
    explicit FakeBroker(std::vector<aegis::Bytes> events) {
        char dir[] = "/tmp/aegis-receiver-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        dir_ = dir;
        path_ = dir_ + "/broker.sock";
        listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", path_.c_str());
        REQUIRE(::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0);
        REQUIRE(::listen(listener_, 1) == 0);
        thread_ = std::thread([this, events = std::move(events)] { serve(events); });
    }
    FakeBroker(const FakeBroker&) = delete;
    FakeBroker& operator=(const FakeBroker&) = delete;
    ~FakeBroker() {
        if (thread_.joinable()) thread_.join();
        ::close(listener_);
        ::unlink(path_.c_str());
        ::rmdir(dir_.c_str());
    }

    [[nodiscard]] const std::string& path() const { return path_; }
    // The acknowledged positions, once the client has gone.
    [[nodiscard]] const std::vector<std::uint64_t>& acks() {
        thread_.join();
        return acks_;
    }

private:
    void serve(const std::vector<aegis::Bytes>& events) {
        const int fd = ::accept(listener_, nullptr, nullptr);
        if (fd < 0) return;
        ipc::FrameReader reader;
        const auto next = [&]() -> std::optional<ipc::Frame> {
            for (;;) {
                auto decoded = reader.next();
                if (auto* frame = std::get_if<ipc::Frame>(&decoded)) return std::move(*frame);
                if (std::holds_alternative<ipc::LocalError>(decoded)) return std::nullopt;
                std::array<std::uint8_t, 4096> buffer{};
                const auto got = ::read(fd, buffer.data(), buffer.size());
                if (got <= 0) return std::nullopt;
                reader.feed(aegis::ByteView(buffer.data(), static_cast<std::size_t>(got)));
            }
        };
        const auto send = [&](const aegis::Bytes& bytes) { (void)!::write(fd, bytes.data(), bytes.size()); };
        if (auto hello = next()) send(ipc::encode_frame(ipc::ok_response(hello->header["id"], {{"v", 1}})));
        for (const auto& event : events) send(event);
        while (auto frame = next()) {
            if (frame->header.value("op", "") != "ack") continue;
            acks_.push_back(frame->header.value("cursor_seq", std::uint64_t{0}));
            send(ipc::encode_frame(ipc::ok_response(frame->header["id"])));
        }
        ::close(fd);
    }

    std::string dir_;
    std::string path_;
    int listener_ = -1;
    std::thread thread_;
    std::vector<std::uint64_t> acks_;
};

// A message event as the broker sends it; cursor_seq 0 for a plain subscription.
[[nodiscard]] aegis::Bytes message_event(std::string_view payload, std::uint64_t cursor_seq, std::uint8_t origin = 7) {
    aegis::protocol::Envelope envelope;
    envelope.id = aegis::protocol::new_message_id(1731000000000 + cursor_seq);
    envelope.channel = "backend.host42.tests";
    envelope.origin.fill(origin);
    envelope.origin_id = "backend1";
    auto header = ipc::message_event(envelope);
    if (cursor_seq != 0) header["cursor_seq"] = cursor_seq;
    return ipc::encode_frame(header, aegis::as_bytes(payload));
}

// What the receiver wrote to `out`.
[[nodiscard]] std::string written(std::FILE* out) {
    std::fflush(out);
    std::rewind(out);
    std::string text;
    for (int c = std::fgetc(out); c != EOF; c = std::fgetc(out)) text += static_cast<char>(c);
    return text;
}

}  // namespace

TEST_CASE("receiver: a durable drain prints the backlog and acknowledges each position", "[cli]") {
    FakeBroker broker({message_event("one", 1), message_event("two", 2), message_event("three", 3),
                       ipc::encode_frame(json{{"event", "caught_up"}})});
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::tmpfile(), &std::fclose);
    REQUIRE(out != nullptr);
    cli::ReceiveOptions options;
    options.durable = "nightly";
    options.drain = true;
    {
        auto client = ipc::Client::connect(broker.path(), "aegis-sub", ipc::deadline_after(std::chrono::seconds(10)));
        REQUIRE(client);
        cli::Receiver receiver(*client, options, "aegis-sub", out.get());
        CHECK(receiver.run() == 0);
    }
    CHECK(written(out.get()) == "one\ntwo\nthree\n");
    CHECK(broker.acks() == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("receiver: --from keeps one signer's messages and -C stops after N", "[cli]") {
    aegis::crypto::PublicKey wanted{};
    wanted.fill(9);
    FakeBroker broker({message_event("a", 0, 7), message_event("b", 0, 9), message_event("c", 0, 7),
                       message_event("d", 0, 9), message_event("e", 0, 9)});
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::tmpfile(), &std::fclose);
    REQUIRE(out != nullptr);
    cli::ReceiveOptions options;
    options.from = aegis::crypto::fingerprint(wanted);
    options.count = 2;
    {
        auto client = ipc::Client::connect(broker.path(), "aegis-sub", ipc::deadline_after(std::chrono::seconds(10)));
        REQUIRE(client);
        cli::Receiver receiver(*client, options, "aegis-sub", out.get());
        CHECK(receiver.run() == 0);
    }
    CHECK(written(out.get()) == "b\nd\n");
    CHECK(broker.acks().empty());
}

TEST_CASE("receiver: -W ends the wait with exit 5 when fewer messages came", "[cli]") {
    FakeBroker broker({message_event("only", 0)});
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> out(std::tmpfile(), &std::fclose);
    REQUIRE(out != nullptr);
    cli::ReceiveOptions options;
    options.count = 2;
    options.wait = std::chrono::milliseconds(200);
    {
        auto client = ipc::Client::connect(broker.path(), "aegis-sub", ipc::deadline_after(std::chrono::seconds(10)));
        REQUIRE(client);
        cli::Receiver receiver(*client, options, "aegis-sub", out.get());
        CHECK(receiver.run() == aegis::to_int(aegis::ExitCode::timeout));
    }
    CHECK(written(out.get()) == "only\n");
}

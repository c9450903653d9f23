#include "ipc/server.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <deque>
#include <unordered_map>
#include <vector>

#include "ipc/messages.h"

namespace aegis::ipc {

namespace asio = boost::asio;
using Local = asio::local::stream_protocol;

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
constexpr std::size_t kMaxGather = 512;  // frames in one write (writev takes at most 1024 buffers)
constexpr std::chrono::seconds kCloseAfterWritesLimit{5};

class PeerImpl;

// What the server and its peers share; outlives the Server object while peers remain.
struct Core {
    ServerCallbacks callbacks;
    ServerLimits limits;
    std::unordered_map<std::uint64_t, std::weak_ptr<PeerImpl>> peers;
    std::uint64_t next_peer_id = 1;

    void log(std::string_view line) const {
        if (callbacks.log) callbacks.log(line);
    }
};

class PeerImpl final : public Peer, public std::enable_shared_from_this<PeerImpl> {
public:
    PeerImpl(Local::socket socket, std::shared_ptr<Core> core, std::uint64_t id, pid_t pid)
        : socket_(std::move(socket)), linger_(socket_.get_executor()), core_(std::move(core)), id_(id), pid_(pid) {}

    using Peer::send;

    void start() { read_more(); }

    bool send(std::shared_ptr<const Bytes> frame) override {
        if (!open_) return false;
        if (queued_bytes_ + frame->size() > core_->limits.max_queued_bytes) {
            core_->log(
                fmt::format("local client {} (pid {}) fell {} bytes behind; disconnected", id_, pid_, queued_bytes_));
            shut_down();
            return false;
        }
        queued_bytes_ += frame->size();
        queue_.push_back(std::move(frame));
        if (queue_.size() == 1) write_next();
        return true;
    }

    void close_after_writes() override {
        if (!open_) return;
        closing_ = true;
        if (queue_.empty()) {
            shut_down();
            return;
        }
        linger_.expires_after(kCloseAfterWritesLimit);
        linger_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
            if (!error) self->shut_down();
        });
    }

    [[nodiscard]] bool is_open() const override { return open_; }
    [[nodiscard]] std::uint64_t id() const override { return id_; }
    [[nodiscard]] pid_t pid() const override { return pid_; }
    [[nodiscard]] std::size_t queued_bytes() const override { return queued_bytes_; }

    void shut_down() {
        if (!open_) return;
        open_ = false;
        boost::system::error_code ignored;
        socket_.shutdown(Local::socket::shutdown_both, ignored);
        socket_.close(ignored);
        linger_.cancel();
        queue_.clear();
        queued_bytes_ = 0;
        finish();
    }

private:
    void read_more() {
        if (!open_ || closing_) return;
        socket_.async_read_some(asio::buffer(chunk_),
                                [self = shared_from_this()](const boost::system::error_code& error, std::size_t size) {
                                    if (error) {
                                        self->shut_down();
                                        return;
                                    }
                                    self->on_bytes(size);
                                });
    }

    void on_bytes(std::size_t size) {
        reader_.feed(ByteView(chunk_.data(), size));
        for (;;) {
            auto decoded = reader_.next();
            if (std::holds_alternative<std::monostate>(decoded)) break;
            if (auto* error = std::get_if<LocalError>(&decoded)) {
                core_->log(
                    fmt::format("local client {} (pid {}): {}: {}", id_, pid_, name(error->reason), error->message));
                send(error_response(nullptr, to_wire(*error)));
                if (breaks_framing(error->reason)) {
                    close_after_writes();
                    return;
                }
                continue;
            }
            if (core_->callbacks.on_frame)
                core_->callbacks.on_frame(shared_from_this(), std::move(std::get<Frame>(decoded)));
            if (!open_ || closing_) return;
        }
        read_more();
    }

    // Everything queued goes out in one gathered write (up to a bound), so a turn that answers
    // many pipelined requests, or fans out many messages, costs one system call, not one per frame.
    void write_next() {
        writing_.clear();
        std::size_t bytes = 0;
        for (const auto& frame : queue_) {
            if (!writing_.empty() && (writing_.size() >= kMaxGather || bytes + frame->size() > kReadChunk)) break;
            writing_.push_back(asio::buffer(*frame));
            bytes += frame->size();
        }
        asio::async_write(socket_, writing_,
                          [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
                              if (!self->open_) return;
                              if (error) {
                                  self->shut_down();
                                  return;
                              }
                              for (std::size_t i = 0; i < self->writing_.size(); ++i) {
                                  self->queued_bytes_ -= self->queue_.front()->size();
                                  self->queue_.pop_front();
                              }
                              self->writing_.clear();
                              if (!self->queue_.empty()) {
                                  self->write_next();
                              } else if (self->closing_) {
                                  self->shut_down();
                              }
                          });
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        core_->peers.erase(id_);
        if (core_->callbacks.on_close) core_->callbacks.on_close(shared_from_this());
    }

    Local::socket socket_;
    asio::steady_timer linger_;
    std::shared_ptr<Core> core_;
    std::uint64_t id_;
    pid_t pid_;
    FrameReader reader_;
    std::array<std::uint8_t, kReadChunk> chunk_{};
    std::deque<std::shared_ptr<const Bytes>> queue_;
    std::vector<asio::const_buffer> writing_;  // the front of queue_, being written
    std::size_t queued_bytes_ = 0;
    bool open_ = true;
    bool closing_ = false;
    bool finished_ = false;
};

// Answers a refused connection with one error frame, then closes it.
void refuse(Local::socket socket, const WireError& error) {
    auto owned = std::make_shared<Local::socket>(std::move(socket));
    auto frame = std::make_shared<Bytes>(encode_frame(error_response(nullptr, error)));
    asio::async_write(*owned, asio::buffer(*frame), [owned, frame](const boost::system::error_code&, std::size_t) {
        boost::system::error_code ignored;
        owned->shutdown(Local::socket::shutdown_both, ignored);
        owned->close(ignored);
    });
}

class ServerImpl final : public Server {
public:
    ServerImpl(asio::io_context& io, std::filesystem::path path, std::shared_ptr<Core> core)
        : acceptor_(io), path_(std::move(path)), core_(std::move(core)) {}

    ~ServerImpl() override { stop_accepting(); }

    Result<void> bind() {
        boost::system::error_code error;
        acceptor_.open(Local(), error);
        const auto group = core_->limits.admitted_group;
        if (!error) {
            // umask makes the socket 0600 from its first moment; chmod below states it explicitly.
            const mode_t previous = ::umask(0177);
            acceptor_.bind(Local::endpoint(path_.native()), error);
            ::umask(previous);
        }
        if (!error && group && ::chown(path_.c_str(), static_cast<uid_t>(-1), *group) != 0)
            error.assign(errno, boost::system::system_category());
        if (!error && ::chmod(path_.c_str(), group ? 0660 : 0600) != 0)
            error.assign(errno, boost::system::system_category());
        if (!error) acceptor_.listen(asio::socket_base::max_listen_connections, error);
        if (error) return make_error(ExitCode::failure, "cannot listen on {}: {}", path_.string(), error.message());
        bound_ = true;
        accept_next();
        return {};
    }

    void stop_accepting() override {
        if (!bound_) return;
        bound_ = false;
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        ::unlink(path_.c_str());
    }

    void close_all() override {
        std::vector<std::shared_ptr<PeerImpl>> open;
        for (auto& [id, weak] : core_->peers) {
            if (auto peer = weak.lock()) open.push_back(std::move(peer));
        }
        for (auto& peer : open) peer->close_after_writes();
    }

    [[nodiscard]] std::size_t peers() const override { return core_->peers.size(); }

private:
    void accept_next() {
        acceptor_.async_accept([this, core = core_](const boost::system::error_code& error, Local::socket socket) {
            if (error == asio::error::operation_aborted || !bound_) return;
            if (!error) on_accept(std::move(socket));
            accept_next();
        });
    }

    void on_accept(Local::socket socket) {
        ucred credentials{};
        socklen_t size = sizeof(credentials);
        if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &credentials, &size) != 0) {
            core_->log(fmt::format("refused local connection: cannot read its credentials"));
            return;
        }
        if (!admitted(socket.native_handle(), credentials)) {
            const auto group = core_->limits.admitted_group;
            core_->log(
                fmt::format("refused local connection from uid {} (pid {}): only uid {}, root{} may use "
                            "this broker",
                            credentials.uid, credentials.pid, ::getuid(),
                            group ? fmt::format(" and group {}", *group) : std::string()));
            refuse(std::move(socket), wire_error(LocalReason::permission_denied, "this broker serves another user",
                                                 ExitCode::unreachable));
            return;
        }
        if (core_->peers.size() >= core_->limits.max_peers) {
            core_->log(fmt::format("refused local connection (pid {}): {} clients already", credentials.pid,
                                   core_->peers.size()));
            refuse(std::move(socket), to_wire(LocalError{LocalReason::overloaded, "too many local clients"}));
            return;
        }
        const auto id = core_->next_peer_id++;
        auto peer = std::make_shared<PeerImpl>(std::move(socket), core_, id, credentials.pid);
        core_->peers.emplace(id, peer);
        peer->start();
    }

    // The broker's own uid and root always; with an admitted group, the processes in it.
    [[nodiscard]] bool admitted(int fd, const ucred& credentials) const {
        if (credentials.uid == ::getuid() || credentials.uid == 0) return true;
        const auto group = core_->limits.admitted_group;
        if (!group) return false;
        if (credentials.gid == *group) return true;
        // The connecting process's supplementary groups, as they were when it connected.
        std::vector<gid_t> groups(64);
        for (;;) {
            socklen_t size = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
            if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &size) == 0) {
                groups.resize(size / sizeof(gid_t));
                break;
            }
            if (errno != ERANGE) return false;
            groups.resize(size / sizeof(gid_t) + 1);
        }
        return std::find(groups.begin(), groups.end(), *group) != groups.end();
    }

    Local::acceptor acceptor_;
    std::filesystem::path path_;
    std::shared_ptr<Core> core_;
    bool bound_ = false;
};

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(asio::io_context& io, const std::filesystem::path& socket,
                                               ServerCallbacks callbacks, ServerLimits limits) {
    auto core = std::make_shared<Core>();
    core->callbacks = std::move(callbacks);
    core->limits = limits;
    auto server = std::make_unique<ServerImpl>(io, socket, std::move(core));
    if (auto bound = server->bind(); !bound) return bound.take_error();
    return std::unique_ptr<Server>(std::move(server));
}

}  // namespace aegis::ipc

#include "cli/publish_pipeline.h"

#include <algorithm>

namespace aegis::cli {

namespace {

[[nodiscard]] bool takes_batches(const nlohmann::json& hello) {
    const auto features = hello.find("features");
    if (features == hello.end() || !features->is_array()) return false;
    return std::any_of(features->begin(), features->end(), [](const nlohmann::json& feature) {
        return feature.is_string() && feature.get_ref<const std::string&>() == ipc::kPublishBatchFeature;
    });
}

}  // namespace

PublishPipeline::PublishPipeline(ipc::Client& client, ipc::PublishRequest request, std::size_t window,
                                 std::size_t window_bytes, std::optional<std::chrono::milliseconds> timeout,
                                 OnQueued on_queued)
    : client_(client),
      request_(std::move(request)),
      window_(window == 0 ? 1 : window),
      window_bytes_(window_bytes),
      timeout_(timeout),
      on_queued_(std::move(on_queued)) {}

bool PublishPipeline::batches() {
    if (!batches_) {
        if (request_.wait_ack) {
            batches_ = false;
        } else if (client_.hello().is_object()) {
            batches_ = takes_batches(client_.hello());
        } else {
            return false;  // not known yet
        }
    }
    return *batches_;
}

Result<void> PublishPipeline::publish(ByteView payload) {
    if (batches() && payload.size() <= kBatchBytes) {
        if (gathered_.size() + payload.size() > kBatchBytes) {
            if (auto sent = send_gathered(); !sent) return sent;
        }
        lengths_.push_back(static_cast<std::uint32_t>(payload.size()));
        gathered_.insert(gathered_.end(), payload.begin(), payload.end());
        if (lengths_.size() >= kBatchMessages) return send_gathered();
        return {};
    }
    if (auto sent = send_gathered(); !sent) return sent;  // in order
    return send(ipc::to_header(request_), payload, 1);
}

Result<void> PublishPipeline::send_gathered() {
    if (lengths_.empty()) return {};
    const auto messages = lengths_.size();
    // Without on_queued_ nobody shows the ids: the broker need not list them.
    auto header = messages == 1
                      ? ipc::to_header(request_)
                      : ipc::to_header(ipc::PublishBatchRequest{request_, std::move(lengths_), bool(on_queued_)});
    auto sent = send(std::move(header), gathered_, messages);
    lengths_.clear();
    gathered_.clear();
    return sent;
}

Result<void> PublishPipeline::send(nlohmann::json header, ByteView payload, std::size_t messages) {
    if (auto room = make_room(messages, payload.size()); !room) return room;
    auto id = client_.send_later(std::move(header), payload, ipc::deadline_after(timeout_));
    if (!id) return id.take_error();
    outstanding_.push_back(Outstanding{*id, messages, payload.size()});
    outstanding_messages_ += messages;
    outstanding_bytes_ += payload.size();
    return {};
}

Result<void> PublishPipeline::make_room(std::size_t messages, std::size_t bytes) {
    while (!outstanding_.empty() &&
           (outstanding_messages_ + messages > window_ || outstanding_bytes_ + bytes > window_bytes_)) {
        if (auto settled = settle_oldest(); !settled) return settled;
    }
    return {};
}

Result<void> PublishPipeline::flush() {
    if (auto sent = send_gathered(); !sent) return sent;
    return client_.flush(ipc::deadline_after(timeout_));
}

Result<void> PublishPipeline::finish() {
    if (auto sent = send_gathered(); !sent) return sent;
    while (!outstanding_.empty()) {
        if (auto settled = settle_oldest(); !settled) return settled;
    }
    return {};
}

Result<void> PublishPipeline::settle_oldest() {
    const Outstanding oldest = outstanding_.front();
    outstanding_.pop_front();
    outstanding_messages_ -= oldest.messages;
    outstanding_bytes_ -= oldest.bytes;
    auto answer = client_.response(oldest.request_id, ipc::deadline_after(timeout_));
    const auto queued = request_.wait_ack ? client_.take_queued(oldest.request_id) : std::nullopt;
    if (!answer && answer.error().exit == ExitCode::timeout && request_.wait_ack) {
        // A script that sends again on a timeout must know the first one is not lost.
        if (queued) {
            return make_error(ExitCode::timeout,
                              "no acknowledgement from the gateway within the timeout; message {} stays queued in "
                              "the broker and will be delivered later (sending it again would deliver it twice)",
                              *queued);
        }
        return make_error(ExitCode::timeout,
                          "timed out waiting for the broker to queue the message (request {}); it may be queued "
                          "and delivered later",
                          oldest.request_id);
    }
    if (!answer) return answer.take_error();
    if (!on_queued_) return {};
    if (oldest.messages == 1) {  // a plain publish: a batch carries two or more
        on_queued_(answer->header.value("message_id", std::string()), request_.channel);
        return {};
    }
    const auto ids = answer->header.find("message_ids");
    if (ids == answer->header.end() || !ids->is_array() || ids->size() != oldest.messages) {
        return make_error(ExitCode::failure, "the broker's answer to a batch of {} messages has no id for each",
                          oldest.messages);
    }
    for (const auto& id : *ids) on_queued_(id.is_string() ? id.get<std::string>() : std::string(), request_.channel);
    return {};
}

}  // namespace aegis::cli

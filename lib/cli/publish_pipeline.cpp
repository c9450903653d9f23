#include "cli/publish_pipeline.h"

namespace aegis::cli {

Result<void> PublishPipeline::publish(const ipc::PublishRequest& request, ByteView payload) {
    while (!outstanding_.empty() &&
           (outstanding_.size() >= window_ || outstanding_bytes_ + payload.size() > window_bytes_)) {
        if (auto settled = settle_oldest(); !settled) return settled;
    }
    auto id = client_.send_later(ipc::to_header(request), payload, ipc::deadline_after(timeout_));
    if (!id) return id.take_error();
    outstanding_.push_back(Outstanding{*id, request.channel, payload.size()});
    outstanding_bytes_ += payload.size();
    return {};
}

Result<void> PublishPipeline::flush() {
    return client_.flush(ipc::deadline_after(timeout_));
}

Result<void> PublishPipeline::finish() {
    while (!outstanding_.empty()) {
        if (auto settled = settle_oldest(); !settled) return settled;
    }
    return {};
}

Result<void> PublishPipeline::settle_oldest() {
    const Outstanding oldest = outstanding_.front();
    outstanding_.pop_front();
    outstanding_bytes_ -= oldest.bytes;
    auto answer = client_.response(oldest.request_id, ipc::deadline_after(timeout_));
    if (!answer) return answer.take_error();
    if (on_queued_) on_queued_(answer->header.value("message_id", std::string()), oldest.channel);
    return {};
}

}  // namespace aegis::cli

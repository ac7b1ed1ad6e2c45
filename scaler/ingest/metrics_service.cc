#include "scaler/ingest/metrics_service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/model/proto_convert.h"

namespace zeroscale::ingest {
namespace {

using Reactor = grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>;

class StreamReactor;

// Outlives the reactor so late writer callbacks can find out it is gone.
struct Shared {
  std::recursive_mutex mu;  // gRPC may run reactions inline from Start* calls
  StreamReactor* reactor = nullptr;
};

class StreamReactor : public Reactor {
 public:
  // `sender` is who the stream's credential says it is, or why it is refused (the
  // stream then ends at once with that status).
  StreamReactor(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                SampleListener* listener, const StreamLimits& limits, SampleAuth* auth,
                absl::StatusOr<auth::Identity> sender)
      : queue_(queue),
        metrics_(metrics),
        clock_(clock),
        listener_(listener),
        limits_(limits),
        auth_(auth),
        sender_(std::move(sender)),
        shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    metrics_->active_streams.Increment();
    std::lock_guard<std::recursive_mutex> lock(shared_->mu);
    if (!sender_.ok()) {
      finished_ = true;
      Finish(grpc::Status(static_cast<grpc::StatusCode>(sender_.status().code()),
                          std::string(sender_.status().message())));
      return;
    }
    reading_ = true;
    StartRead(&request_bytes_);
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<Shared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    reading_ = false;
    if (!ok) {
      read_closed_ = true;
      MaybeFinishLocked();
      return;
    }
    // Parsed here rather than by gRPC, which reports a message it cannot parse as the
    // end of the stream, and the sender would never learn why its samples went unheard.
    if (!grpc::SerializationTraits<v1::StreamRequest>::Deserialize(&request_bytes_, &request_)
             .ok()) {
      return FailLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "the message is not a zeroscale.v1.StreamRequest"),
                        "message");
    }
    if (static_cast<size_t>(request_.samples_size()) > limits_.max_samples_per_message) {
      return FailLocked(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("a StreamRequest of ", request_.samples_size(),
                                    " samples; at most ", limits_.max_samples_per_message,
                                    " are taken per message (--grpc-max-samples-per-message)")),
          "samples");
    }
    const absl::Time now = clock_->Now();
    std::vector<store::EncodedPodmetric> valid;
    valid.reserve(request_.samples_size());
    bool fresh = false;
    for (const v1::Podmetric& p : request_.samples()) {
      metrics_->received_grpc.Increment();
      absl::StatusOr<Podmetric> m = PodmetricFromProto(p);
      absl::Status s = m.status();
      if (s.ok()) {
        m->received_at = now;
        s = ValidatePodmetric(*m, now);
      }
      if (s.ok() && !seen_pods_.contains(m->id) &&
          seen_pods_.size() >= limits_.max_pods_per_stream) {
        s = absl::InvalidArgumentError(
            absl::StrCat("id: this stream already carried samples of ", seen_pods_.size(),
                         " pods, the most one stream may (--grpc-max-pods-per-stream)"));
      }
      if (s.ok() && auth_ != nullptr) {
        s = auth_->CheckSample(*sender_, *m, now);
        if (!s.ok()) {
          s = absl::InvalidArgumentError(absl::StrCat(s.message(), " (permission denied)"));
        }
      }
      if (s.ok() && p.seq() != 0) {
        if (p.seq() <= last_seq_) {
          s = absl::InvalidArgumentError(absl::StrCat(
              "seq: ", p.seq(), " does not increase within the stream (last ", last_seq_, ")"));
        } else {
          last_seq_ = p.seq();
        }
      }
      if (!s.ok()) {
        const std::string field = FieldOfError(s);
        metrics_->Rejected(field);
        v1::Rejection* r = rejections_.Add();
        r->set_seq(p.seq());
        r->set_field(field);
        r->set_message(std::string(s.message()));
        pending_.push_back({p.seq(), true});
        continue;
      }
      if (seen_pods_.insert(m->id).second) fresh = true;
      pending_.push_back({p.seq(), false});
      // Encode here, on gRPC's threads, so the single writer thread only does I/O.
      valid.push_back(store::Encode(*std::move(m)));
    }
    if (!valid.empty()) {
      if (listener_ != nullptr) {
        std::vector<Podmetric> heard;
        heard.reserve(valid.size());
        for (const store::EncodedPodmetric& e : valid) heard.push_back(e.sample);
        listener_->OnSamples(std::move(heard));
      }
      submitted_.push_back(valid.size());
      queue_->Submit(std::move(valid), fresh, [keep](const Outcome& outcome) {
        std::lock_guard<std::recursive_mutex> lock(keep->mu);
        if (keep->reactor != nullptr) keep->reactor->OnStored(outcome);
      });
    }
    AdvanceAckLocked();
    MaybeWriteLocked();
    if (queue_->HasSpace()) {
      reading_ = true;
      StartRead(&request_bytes_);
    } else {
      // Resume reading once the writer catches up; gRPC flow control holds senders.
      queue_->NotifyWhenSpace([keep] {
        std::lock_guard<std::recursive_mutex> lock(keep->mu);
        if (keep->reactor != nullptr) keep->reactor->ResumeReadLocked();
      });
    }
  }

  void OnWriteDone(bool ok) override {
    std::shared_ptr<Shared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    writing_ = false;
    if (!ok) broken_ = true;
    MaybeWriteLocked();
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::shared_ptr<Shared> keep = shared_;
    std::lock_guard<std::recursive_mutex> lock(keep->mu);
    broken_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> lock(shared_->mu);
      shared_->reactor = nullptr;
    }
    metrics_->active_streams.Decrement();
    delete this;
  }

 private:
  struct Pending {
    uint64_t seq;
    bool done;
  };

  // Called (locked) by the writer thread with the outcome of the oldest submission,
  // which covers the next `count` entries not yet done (submissions complete in order).
  void OnStored(const Outcome& outcome) {
    const size_t count = submitted_.front();
    submitted_.pop_front();
    size_t index = 0;
    auto failed = outcome.failed.begin();
    for (auto it = pending_.begin(); it != pending_.end() && index < count; ++it) {
      if (it->done) continue;
      if (failed != outcome.failed.end() && failed->first == index) {
        v1::Rejection* r = rejections_.Add();
        r->set_seq(it->seq);
        r->set_field(FieldOfError(failed->second));
        r->set_message(std::string(failed->second.message()));
        ++failed;
      }
      it->done = true;
      ++index;
    }
    AdvanceAckLocked();
    MaybeWriteLocked();
    MaybeFinishLocked();
  }

  void ResumeReadLocked() {
    if (reading_ || read_closed_ || finished_ || broken_ || failed_) return;
    reading_ = true;
    StartRead(&request_bytes_);
  }

  // Ends the stream with `status` once the write in flight is done; reads stop. Samples
  // already queued are still stored; unacknowledged, they are replayed by the sender.
  void FailLocked(grpc::Status status, const std::string& reason) {
    metrics_->Rejected(reason);
    failed_ = true;
    fail_status_ = std::move(status);
    MaybeFinishLocked();
  }

  // Cumulative: a rejected sample whose seq is below one already acknowledged (it came
  // out of order) must not take the acknowledgement back below what is stored.
  void AdvanceAckLocked() {
    while (!pending_.empty() && pending_.front().done) {
      acked_ = std::max(acked_, pending_.front().seq);
      pending_.pop_front();
    }
  }

  void MaybeWriteLocked() {
    if (writing_ || finished_ || broken_) return;
    if (acked_ == sent_ack_ && rejections_.empty()) return;
    response_.Clear();
    response_.set_acked_seq(acked_);
    response_.mutable_rejections()->Swap(&rejections_);
    sent_ack_ = acked_;
    bool own = false;
    response_bytes_.Clear();
    if (!grpc::SerializationTraits<v1::StreamResponse>::Serialize(response_, &response_bytes_, &own)
             .ok()) {
      broken_ = true;
      return;
    }
    writing_ = true;
    StartWrite(&response_bytes_);
  }

  void MaybeFinishLocked() {
    if (finished_ || writing_) return;
    if (broken_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
      return;
    }
    if (failed_ && !reading_) {
      finished_ = true;
      Finish(fail_status_);
      return;
    }
    if (read_closed_ && submitted_.empty() && pending_.empty() && acked_ == sent_ack_ &&
        rejections_.empty()) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  IngestQueue* const queue_;
  IngestMetrics* const metrics_;
  const Clock* const clock_;
  SampleListener* const listener_;
  const StreamLimits limits_;
  SampleAuth* const auth_;
  const absl::StatusOr<auth::Identity> sender_;
  std::shared_ptr<Shared> shared_;

  grpc::ByteBuffer request_bytes_;
  grpc::ByteBuffer response_bytes_;
  v1::StreamRequest request_;
  v1::StreamResponse response_;
  grpc::Status fail_status_;
  google::protobuf::RepeatedPtrField<v1::Rejection> rejections_;
  std::deque<Pending> pending_;
  absl::flat_hash_set<std::string> seen_pods_;
  uint64_t last_seq_ = 0;
  uint64_t acked_ = 0;
  uint64_t sent_ack_ = 0;
  std::deque<size_t> submitted_;  // sizes of submissions still in the queue
  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;
  bool broken_ = false;
  bool failed_ = false;  // fail_status_ ends the stream
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* MetricsServiceImpl::Stream(
    grpc::CallbackServerContext* context) {
  absl::StatusOr<auth::Identity> sender = auth::Identity{};
  if (auth_ != nullptr) {
    std::string authorization;
    const auto& md = context->client_metadata();
    if (auto it = md.find("authorization"); it != md.end()) {
      authorization.assign(it->second.data(), it->second.size());
    }
    sender = auth_->AuthenticateSender(authorization);
  }
  return new StreamReactor(queue_, metrics_, clock_, listener_, limits_, auth_, std::move(sender));
}

}  // namespace zeroscale::ingest

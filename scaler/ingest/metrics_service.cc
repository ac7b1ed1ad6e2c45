#include "scaler/ingest/metrics_service.h"

#include <deque>
#include <memory>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/model/proto_convert.h"

namespace zeroscale::ingest {
namespace {

using Reactor = grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>;

class StreamReactor;

// Outlives the reactor so late writer callbacks can find out it is gone.
struct Shared {
  std::recursive_mutex mu;  // gRPC may run reactions inline from Start* calls
  StreamReactor* reactor = nullptr;
};

class StreamReactor : public Reactor {
 public:
  StreamReactor(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                SampleListener* listener)
      : queue_(queue),
        metrics_(metrics),
        clock_(clock),
        listener_(listener),
        shared_(std::make_shared<Shared>()) {
    shared_->reactor = this;
    metrics_->active_streams.Increment();
    std::lock_guard<std::recursive_mutex> lock(shared_->mu);
    reading_ = true;
    StartRead(&request_);
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
      StartRead(&request_);
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
    if (reading_ || read_closed_ || finished_ || broken_) return;
    reading_ = true;
    StartRead(&request_);
  }

  void AdvanceAckLocked() {
    while (!pending_.empty() && pending_.front().done) {
      if (pending_.front().seq != 0) acked_ = pending_.front().seq;
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
    writing_ = true;
    StartWrite(&response_);
  }

  void MaybeFinishLocked() {
    if (finished_ || writing_) return;
    if (broken_) {
      finished_ = true;
      Finish(grpc::Status::CANCELLED);
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
  std::shared_ptr<Shared> shared_;

  v1::StreamRequest request_;
  v1::StreamResponse response_;
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
  bool finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* MetricsServiceImpl::Stream(
    grpc::CallbackServerContext* context) {
  return new StreamReactor(queue_, metrics_, clock_, listener_);
}

}  // namespace zeroscale::ingest

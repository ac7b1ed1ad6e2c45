#include "sidecar/stream/metrics_stream.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/model/proto_convert.h"
#include "common/time/backoff.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "zeroscale/v1/metrics_service.grpc.pb.h"

namespace zeroscale::sidecar {
namespace {

// Optional Prometheus instruments; all null when no registry was given.
struct Instruments {
  prometheus::Counter* submitted = nullptr;
  prometheus::Counter* acked = nullptr;
  prometheus::Family<prometheus::Counter>* rejected = nullptr;
  prometheus::Counter* dropped = nullptr;
  prometheus::Counter* connects = nullptr;
  prometheus::Counter* failures = nullptr;
  prometheus::Gauge* buffered = nullptr;
  prometheus::Gauge* connected = nullptr;

  explicit Instruments(prometheus::Registry* r) {
    if (r == nullptr) return;
    auto counter = [r](const char* name, const char* help) {
      return &prometheus::BuildCounter().Name(name).Help(help).Register(*r).Add({});
    };
    auto gauge = [r](const char* name, const char* help) {
      return &prometheus::BuildGauge().Name(name).Help(help).Register(*r).Add({});
    };
    submitted =
        counter("zeroscale_sidecar_stream_samples_submitted_total", "Samples handed to the stream");
    acked = counter("zeroscale_sidecar_stream_samples_acked_total",
                    "Samples the scaler acknowledged (stored or rejected)");
    rejected = &prometheus::BuildCounter()
                    .Name("zeroscale_sidecar_stream_samples_rejected_total")
                    .Help("Samples the scaler rejected, by offending field")
                    .Register(*r);
    dropped = counter("zeroscale_sidecar_stream_samples_dropped_total",
                      "Samples dropped unacknowledged because the buffer was full");
    connects = counter("zeroscale_sidecar_stream_connects_total", "Streams opened to the scaler");
    failures = counter("zeroscale_sidecar_stream_failures_total",
                       "Streams that broke or could not be opened");
    buffered = gauge("zeroscale_sidecar_stream_buffered_samples",
                     "Unacknowledged samples held for replay");
    connected = gauge("zeroscale_sidecar_stream_connected", "1 while a stream to the scaler is up");
  }
};

void Inc(prometheus::Counter* c, double v = 1) {
  if (c != nullptr) c->Increment(v);
}

}  // namespace

class MetricsStream::Impl {
 public:
  Impl(MetricsStreamOptions options, const Clock* clock)
      : options_(std::move(options)),
        clock_(clock),
        instruments_(options_.registry),
        next_seq_(options_.first_seq != 0
                      ? options_.first_seq
                      : static_cast<uint64_t>(absl::ToUnixMicros(clock_->Now()))) {
    if (options_.credentials == nullptr) options_.credentials = grpc::InsecureChannelCredentials();
  }

  ~Impl() { (void)Stop(absl::ZeroDuration()); }

  absl::Status Start() {
    if (options_.scaler.empty()) return absl::InvalidArgumentError("scaler: address is empty");
    if (options_.buffer_capacity == 0) {
      return absl::InvalidArgumentError("buffer_capacity: must be at least 1");
    }
    if (options_.max_batch == 0) return absl::InvalidArgumentError("max_batch: must be at least 1");
    if (options_.initial_backoff <= absl::ZeroDuration() ||
        options_.max_backoff < options_.initial_backoff) {
      return absl::InvalidArgumentError(
          "backoff: initial must be positive and not above the maximum");
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (started_ || stopping_) return absl::FailedPreconditionError("stream already started");
    started_ = true;
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  absl::StatusOr<uint64_t> Submit(Podmetric sample, bool urgent) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return absl::FailedPreconditionError("stream is stopping; sample not sent");
    const uint64_t seq = next_seq_++;
    if (buffer_.size() >= options_.buffer_capacity) {
      // The evicted sample's own drop count travels on, so the scaler's sum of
      // `dropped` stays equal to what was really lost.
      pending_dropped_ += 1 + buffer_.front().dropped();
      buffer_.pop_front();
      ++stats_.dropped;
      Inc(instruments_.dropped);
      if (!overflow_logged_) {
        overflow_logged_ = true;
        ZS_LOG(kWarning, "sample buffer full; dropping the oldest unacknowledged samples",
               {"capacity", absl::StrCat(options_.buffer_capacity)});
      }
    }
    sample.seq = seq;
    sample.dropped = pending_dropped_;
    pending_dropped_ = 0;
    PodmetricToProto(sample, &buffer_.emplace_back());
    ++stats_.submitted;
    Inc(instruments_.submitted);
    SetBufferedGaugeLocked();
    if (urgent) urgent_ = true;
    cv_.notify_all();
    return seq;
  }

  absl::Status WaitForAck(uint64_t seq, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    const bool ok = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                 [&] { return stats_.acked_seq >= seq; });
    if (ok) return absl::OkStatus();
    return absl::DeadlineExceededError(absl::StrCat("seq ", seq, " not acknowledged within ",
                                                    absl::FormatDuration(timeout), " (acked up to ",
                                                    stats_.acked_seq, ")"));
  }

  absl::Status Stop(absl::Duration grace) {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return stop_status_;
    stopping_ = true;
    cv_.notify_all();
    if (started_) {
      // The connection thread closes the stream itself once everything is acknowledged.
      cv_.wait_for(lock, absl::ToChronoNanoseconds(grace), [this] { return run_done_; });
    }
    hard_stop_ = true;
    if (context_ != nullptr) context_->TryCancel();
    cv_.notify_all();
    const size_t left = buffer_.size();
    lock.unlock();
    if (thread_.joinable()) thread_.join();
    lock.lock();
    stopped_ = true;
    if (left > 0) {
      ZS_LOG(kWarning, "stream stopped with samples unacknowledged",
             {"samples", absl::StrCat(left)});
      stop_status_ = absl::DeadlineExceededError(
          absl::StrCat(left, " samples were not acknowledged before the stream stopped"));
    }
    return stop_status_;
  }

  MetricsStreamStats stats() const {
    std::lock_guard<std::mutex> lock(mu_);
    MetricsStreamStats s = stats_;
    s.buffered = buffer_.size();
    return s;
  }

 private:
  // Runs on thread_: connect, stream until broken, back off, repeat.
  void Run() {
    std::mt19937_64 rng(std::random_device{}());
    // Full jitter spreads the reconnects of many sidecars after a scaler restart.
    Backoff backoff({options_.initial_backoff, options_.max_backoff, 2.0, Jitter::kFull},
                    [&rng] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng); });
    bool reported_down = false;
    for (;;) {
      if (Finished()) break;
      const ConnectionResult r = RunConnection();
      if (r.healthy) {
        backoff.Reset();
        reported_down = false;
      }
      if (Finished()) break;
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.stream_failures;
        Inc(instruments_.failures);
      }
      if (!reported_down || r.healthy) {
        ZS_LOG(kWarning,
               r.refused   ? "the scaler refused this sidecar's credential (--token-file); retrying"
               : r.healthy ? "stream to scaler broke; reconnecting"
                           : "cannot reach scaler",
               {"scaler", options_.scaler}, {"error", r.error});
        reported_down = true;
      } else {
        ZS_LOG(kDebug, "cannot reach scaler", {"scaler", options_.scaler}, {"error", r.error});
      }
      const absl::Duration wait = backoff.Next();
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                   [this] { return urgent_ || FinishedLocked(); });
      urgent_ = false;
    }
    std::lock_guard<std::mutex> lock(mu_);
    run_done_ = true;
    cv_.notify_all();
  }

  struct ConnectionResult {
    bool healthy = false;  // the scaler answered on this stream
    bool refused = false;  // the scaler refused this sidecar's credential
    std::string error;
  };

  ConnectionResult RunConnection() {
    ConnectionResult result;
    grpc::ChannelArguments args;
    // A private subchannel, so each attempt really dials instead of waiting out the
    // backoff of a shared one; our own backoff paces the attempts.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Notice a scaler that vanished without closing the connection.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
    if (!options_.server_name.empty()) args.SetSslTargetNameOverride(options_.server_name);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(options_.scaler, options_.credentials, args);
    if (!WaitUntilReady(channel.get(), &result.error)) {
      if (!result.error.empty()) result.error = WhyNotConnected(channel);
      return result;
    }

    auto stub = v1::MetricsService::NewStub(channel);
    grpc::ClientContext context;
    if (options_.authorization) {
      if (std::string a = options_.authorization(); !a.empty()) {
        context.AddMetadata("authorization", a);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (hard_stop_) return result;
      context_ = &context;
      sent_seq_ = 0;
      broken_ = false;
    }
    std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream =
        stub->Stream(&context);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.connected = true;
      ++stats_.connects;
      Inc(instruments_.connects);
      if (instruments_.connected != nullptr) instruments_.connected->Set(1);
      overflow_logged_ = false;
      urgent_ = false;  // connected: nothing to hurry any more
    }
    ZS_LOG(kInfo, "stream to scaler open", {"scaler", options_.scaler});

    std::thread reader([&] {
      v1::StreamResponse response;
      while (stream->Read(&response)) {
        result.healthy = true;
        OnResponse(response);
      }
      std::lock_guard<std::mutex> lock(mu_);
      broken_ = true;
      cv_.notify_all();
    });

    bool graceful = false;
    bool write_failed = false;
    for (;;) {
      v1::StreamRequest request;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] {
          return broken_ || hard_stop_ || HasUnsentLocked() || (stopping_ && buffer_.empty());
        });
        if (broken_ || hard_stop_) break;
        if (!HasUnsentLocked()) {
          graceful = true;  // stopping with everything acknowledged
          break;
        }
        // Batches form naturally when catching up; live samples go one by one.
        const uint64_t front = buffer_.front().seq();
        size_t i = sent_seq_ < front ? 0 : static_cast<size_t>(sent_seq_ - front + 1);
        for (; i < buffer_.size() && request.samples_size() < static_cast<int>(options_.max_batch);
             ++i) {
          *request.add_samples() = buffer_[i];
        }
        sent_seq_ = request.samples(request.samples_size() - 1).seq();
      }
      if (!stream->Write(request)) {
        write_failed = true;
        break;
      }
    }
    if (graceful) {
      // The scaler finishes the call once it has acknowledged everything.
      stream->WritesDone();
    } else if (write_failed) {
      // Unblocks the reader should the transport not have ended the call yet. After a
      // read failure, cancelling would only hide the scaler's status.
      context.TryCancel();
    }
    reader.join();
    const grpc::Status status = stream->Finish();
    {
      std::lock_guard<std::mutex> lock(mu_);
      context_ = nullptr;
      stats_.connected = false;
      if (instruments_.connected != nullptr) instruments_.connected->Set(0);
    }
    result.error = status.ok() ? "closed by scaler"
                               : absl::StrCat(status.error_code(), ": ", status.error_message());
    result.refused = status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                     status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
    return result;
  }

  // Why a channel failed to connect, in gRPC's words (its last connection error: refused,
  // or the TLS handshake failed and why), learnt from a call that fails at once.
  std::string WhyNotConnected(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    auto stub = v1::MetricsService::NewStub(channel);
    auto call = stub->Stream(&context);
    call->WritesDone();
    const grpc::Status status = call->Finish();
    if (status.ok()) return "connection failed";
    return absl::StrCat(status.error_code(), ": ", status.error_message());
  }

  // Drives a fresh channel to READY; false when it fails or we are told to stop.
  bool WaitUntilReady(grpc::Channel* channel, std::string* error) {
    grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) {
        *error = "connection failed";
        return false;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (hard_stop_) return false;
      }
      // Short slices keep Stop responsive while a connect is pending.
      channel->WaitForStateChange(
          state, std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      state = channel->GetState(/*try_to_connect=*/true);
    }
    return true;
  }

  void OnResponse(const v1::StreamResponse& response) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const v1::Rejection& r : response.rejections()) {
      ++stats_.rejected;
      if (instruments_.rejected != nullptr)
        instruments_.rejected->Add({{"field", r.field()}}).Increment();
      ZS_LOG(kWarning, "scaler rejected a sample", {"seq", absl::StrCat(r.seq())},
             {"field", r.field()}, {"message", r.message()});
    }
    const uint64_t acked = response.acked_seq();
    if (acked > stats_.acked_seq) stats_.acked_seq = acked;
    size_t n = 0;
    while (!buffer_.empty() && buffer_.front().seq() <= acked) {
      buffer_.pop_front();
      ++n;
    }
    stats_.acked += n;
    Inc(instruments_.acked, static_cast<double>(n));
    SetBufferedGaugeLocked();
    cv_.notify_all();
  }

  bool HasUnsentLocked() const { return !buffer_.empty() && buffer_.back().seq() > sent_seq_; }

  bool FinishedLocked() const { return hard_stop_ || (stopping_ && buffer_.empty()); }
  bool Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return FinishedLocked();
  }

  void SetBufferedGaugeLocked() {
    if (instruments_.buffered != nullptr) {
      instruments_.buffered->Set(static_cast<double>(buffer_.size()));
    }
  }

  MetricsStreamOptions options_;
  const Clock* const clock_;
  Instruments instruments_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Unacknowledged samples, oldest first; their seqs are consecutive because samples
  // leave only from the front (acknowledged or dropped).
  std::deque<v1::Podmetric> buffer_;
  uint64_t next_seq_;
  uint64_t pending_dropped_ = 0;  // dropped since the last submitted sample
  uint64_t sent_seq_ = 0;         // highest seq written on the current stream
  MetricsStreamStats stats_;
  grpc::ClientContext* context_ = nullptr;  // of the live stream, for cancellation
  bool broken_ = false;
  bool urgent_ = false;
  bool overflow_logged_ = false;
  bool started_ = false;
  bool stopping_ = false;
  bool hard_stop_ = false;
  bool run_done_ = false;
  bool stopped_ = false;
  absl::Status stop_status_;
  std::thread thread_;
};

MetricsStream::MetricsStream(MetricsStreamOptions options, const Clock* clock)
    : impl_(std::make_unique<Impl>(std::move(options), clock)) {}

MetricsStream::~MetricsStream() = default;

absl::Status MetricsStream::Start() { return impl_->Start(); }

absl::StatusOr<uint64_t> MetricsStream::Submit(Podmetric sample) {
  return impl_->Submit(std::move(sample), /*urgent=*/false);
}

absl::StatusOr<uint64_t> MetricsStream::SubmitUrgent(Podmetric sample) {
  return impl_->Submit(std::move(sample), /*urgent=*/true);
}

absl::Status MetricsStream::WaitForAck(uint64_t seq, absl::Duration timeout) {
  return impl_->WaitForAck(seq, timeout);
}

absl::Status MetricsStream::Stop(absl::Duration grace) { return impl_->Stop(grace); }

MetricsStreamStats MetricsStream::stats() const { return impl_->stats(); }

}  // namespace zeroscale::sidecar

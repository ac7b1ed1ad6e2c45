#include "scaler/decide/sample_tail.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "scaler/store/podmetric_store.h"

namespace zeroscale::decide {
namespace {

// The store scores members by whole Unix seconds (floor of receivedAt).
int64_t ScoreOf(absl::Time t) {
  return static_cast<int64_t>(std::floor(absl::ToDoubleSeconds(t - absl::UnixEpoch())));
}

}  // namespace

void SeenSamples::Update(Newest* n, const Podmetric& m) {
  n->seq = std::max(n->seq, m.seq);
  n->received_at = std::max(n->received_at, m.received_at);
}

void SeenSamples::KeepUnseen(std::vector<Podmetric>* samples) {
  std::lock_guard<std::mutex> lock(mu_);
  samples->erase(std::remove_if(samples->begin(), samples->end(),
                                [this](const Podmetric& m) { return !MarkIfUnseenLocked(m); }),
                 samples->end());
}

bool SeenSamples::MarkIfUnseen(const Podmetric& m) {
  std::lock_guard<std::mutex> lock(mu_);
  return MarkIfUnseenLocked(m);
}

bool SeenSamples::MarkIfUnseenLocked(const Podmetric& m) {
  Newest& n = pods_[m.id];
  const bool unseen = m.seq != 0 ? m.seq > n.seq : m.received_at > n.received_at;
  if (unseen) Update(&n, m);
  return unseen;
}

void SeenSamples::Forget(absl::Time before) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::erase_if(pods_, [before](const auto& entry) { return entry.second.received_at < before; });
}

void SeenSamples::MaybeForget(absl::Time now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - last_forget_ < absl::Minutes(1)) return;
    last_forget_ = now;
  }
  Forget(now - forget_after_);
}

size_t SeenSamples::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pods_.size();
}

SampleTail::SampleTail(Redis* redis, const Clock* clock, SeenSamples* seen, ListWorkloads workloads,
                       std::function<bool()> leading, Deliver deliver, SampleTailOptions options)
    : redis_(redis),
      clock_(clock),
      seen_(seen),
      list_workloads_(std::move(workloads)),
      leading_(std::move(leading)),
      deliver_(std::move(deliver)),
      options_(options) {}

SampleTail::~SampleTail() { Stop(); }

void SampleTail::Start() {
  if (options_.interval <= absl::ZeroDuration() || thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void SampleTail::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SampleTail::Loop() {
  bool was_leading = false;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    // Rounds are timed on the clock, the seam everything that waits goes through.
    const absl::Time next = clock_->Now() + options_.interval;
    while (!stopping_ && clock_->Now() < next) clock_->WaitUntil(cv_, lock, next);
    if (stopping_) break;
    lock.unlock();
    seen_->MaybeForget(clock_->Now());
    const bool leading = leading_();
    if (leading) {
      (void)RunOnce();  // counted and logged inside
    } else if (was_leading) {
      Reset();
    }
    was_leading = leading;
    lock.lock();
  }
}

void SampleTail::Reset() { followed_.clear(); }

SampleTailStats SampleTail::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

absl::Status SampleTail::Fail(absl::Status s) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failed_rounds;
  }
  // Once per outage: a round a second would flood the log.
  if (!down_) {
    down_ = true;
    ZS_LOG(kWarning, "cannot follow samples stored by other replicas; retrying every round",
           {"error", std::string(s.message())});
  }
  return s;
}

absl::Status SampleTail::RunOnce() {
  absl::StatusOr<std::vector<std::string>> workloads = list_workloads_();
  if (!workloads.ok()) return Fail(workloads.status());
  const absl::Time now = clock_->Now();
  // Workloads no longer managed are dropped; an idle decider costs no Redis call.
  absl::erase_if(followed_, [&workloads](const auto& entry) {
    return std::find(workloads->begin(), workloads->end(), entry.first) == workloads->end();
  });
  if (workloads->empty()) return absl::OkStatus();

  std::vector<RedisCommand> listings;
  listings.reserve(workloads->size());
  for (const std::string& w : *workloads)
    listings.push_back({"SMEMBERS", store::WorkloadPodsKey(w)});
  absl::StatusOr<std::vector<RedisReply>> pods = redis_->Pipeline(listings);
  if (!pods.ok()) return Fail(pods.status());

  // Planned reads; cursors are committed only once the reads succeeded, so a failed
  // round leaves everything to the next one.
  struct Read {
    const std::string* workload;
    std::string pod;
    int64_t from;
  };
  std::vector<Read> reads;
  std::vector<RedisCommand> ranges;
  for (size_t i = 0; i < workloads->size(); ++i) {
    const std::string& w = (*workloads)[i];
    const RedisReply& reply = (*pods)[i];
    if (reply.is_error()) continue;  // e.g. the key holds another type: nothing to follow
    auto it = followed_.find(w);
    // A pod met now was indexed after the previous listing, with its first write.
    const absl::Time met_after = it != followed_.end() ? it->second.listed : now;
    const int64_t first_from = ScoreOf(met_after - options_.first_read_lookback);
    for (const RedisReply& pod : reply.elements) {
      int64_t from = first_from;
      if (it != followed_.end()) {
        auto known = it->second.from.find(pod.str);
        if (known != it->second.from.end()) from = known->second;
      }
      ranges.push_back({"ZRANGEBYSCORE", store::PodmetricKey(pod.str), absl::StrCat(from), "+inf"});
      reads.push_back({&w, pod.str, from});
    }
  }
  std::vector<RedisReply> samples;
  if (!ranges.empty()) {
    absl::StatusOr<std::vector<RedisReply>> replies = redis_->Pipeline(ranges);
    if (!replies.ok()) return Fail(replies.status());
    samples = *std::move(replies);
  }
  if (down_) {
    down_ = false;
    ZS_LOG(kInfo, "following samples stored by other replicas again");
  }

  // Rebuilt from this round's listing, so pods gone from the index are forgotten.
  absl::flat_hash_map<std::string, Followed> next;
  for (const std::string& w : *workloads) next[w].listed = now;
  std::vector<Podmetric> out;
  uint64_t read = 0, skipped = 0;
  for (size_t i = 0; i < reads.size(); ++i) {
    const Read& r = reads[i];
    int64_t& from = next[*r.workload].from[r.pod];
    from = r.from;
    if (samples[i].is_error()) {
      ++skipped;
      continue;
    }
    std::vector<Podmetric> pod_samples;
    for (const RedisReply& member : samples[i].elements) {
      absl::StatusOr<Podmetric> m = PodmetricFromJson(member.str);
      // The index vouches for the pod; a seed-style member without the field is ours.
      if (m.ok() && m->workload.empty()) m->workload = *r.workload;
      if (!m.ok() || m->workload != *r.workload) {
        ++skipped;
        continue;
      }
      from = std::max(from, ScoreOf(m->received_at));
      pod_samples.push_back(*std::move(m));
    }
    read += pod_samples.size();
    // Members of one second come back in lexicographic order, not in the order received.
    std::sort(pod_samples.begin(), pod_samples.end(), [](const Podmetric& a, const Podmetric& b) {
      return a.received_at != b.received_at ? a.received_at < b.received_at : a.seq < b.seq;
    });
    for (Podmetric& m : pod_samples) {
      if (seen_->MarkIfUnseen(m)) out.push_back(std::move(m));
    }
  }
  followed_ = std::move(next);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.rounds;
    stats_.read += read;
    stats_.delivered += out.size();
    stats_.skipped += skipped;
  }
  if (!out.empty()) deliver_(std::move(out));
  return absl::OkStatus();
}

SampleTail::ListWorkloads SampleTail::WorkloadsOf(Decider* decider, Scheduler* scheduler,
                                                  absl::Duration timeout) {
  return [decider, scheduler, timeout]() -> absl::StatusOr<std::vector<std::string>> {
    // Shared with the posted task: a loop that stops drops it, or runs it after we gave up.
    struct Answer {
      std::mutex mu;
      std::condition_variable cv;
      std::optional<std::vector<std::string>> workloads;
    };
    auto answer = std::make_shared<Answer>();
    scheduler->Post([decider, answer] {
      std::vector<std::string> w = decider->engine().Workloads();
      std::lock_guard<std::mutex> lock(answer->mu);
      answer->workloads = std::move(w);
      answer->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(answer->mu);
    if (!answer->cv.wait_for(lock, absl::ToChronoMicroseconds(timeout),
                             [&answer] { return answer->workloads.has_value(); })) {
      return absl::DeadlineExceededError("the decision loop did not list its workloads in time");
    }
    return *std::move(answer->workloads);
  };
}

}  // namespace zeroscale::decide

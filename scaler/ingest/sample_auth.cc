#include "scaler/ingest/sample_auth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status/quote.h"

namespace zeroscale::ingest {
namespace {

constexpr absl::string_view kReasons[] = {"unauthenticated", "not_a_pod", "id",
                                          "workload",        "seq",       "unavailable"};

}  // namespace

void PodOwners::Set(const std::string& workload,
                    const std::optional<std::vector<std::string>>& pods) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = pods_of_.find(workload); it != pods_of_.end()) {
    for (const std::string& p : it->second) {
      auto o = owner_of_.find(p);
      if (o != owner_of_.end() && o->second == workload) owner_of_.erase(o);
    }
    pods_of_.erase(it);
  }
  if (!pods) return;
  pods_of_[workload] = *pods;
  for (const std::string& p : *pods) owner_of_[p] = workload;
}

std::string PodOwners::OwnerOf(const std::string& pod) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = owner_of_.find(pod);
  return it == owner_of_.end() ? "" : it->second;
}

bool PodOwners::HasView(const std::string& workload) const {
  std::lock_guard<std::mutex> lock(mu_);
  return pods_of_.contains(workload);
}

SampleAuth::SampleAuth(auth::AccessControl* access, const PodOwners* owners,
                       prometheus::Registry* registry)
    : access_(access),
      owners_(owners),
      refused_(prometheus::BuildCounter()
                   .Name("zeroscale_ingest_refused_total")
                   .Help("Samples (or whole streams and bodies) refused for identity: "
                         "unauthenticated, not_a_pod, id (another pod), workload (not the "
                         "pod's), seq (far ahead), unavailable (could not check)")
                   .Register(*registry)) {
  for (absl::string_view r : kReasons) refused_.Add({{"reason", std::string(r)}});
}

void SampleAuth::Count(absl::string_view reason) {
  refused_.Add({{"reason", std::string(reason)}}).Increment();
}

absl::StatusOr<auth::Identity> SampleAuth::AuthenticateSender(absl::string_view authorization) {
  absl::StatusOr<auth::Identity> id = access_->AuthenticatePod(authorization);
  if (!id.ok()) {
    switch (id.status().code()) {
      case absl::StatusCode::kPermissionDenied:
        Count("not_a_pod");
        break;
      case absl::StatusCode::kUnavailable:
        Count("unavailable");
        break;
      default:
        Count("unauthenticated");
    }
  }
  return id;
}

absl::Status SampleAuth::CheckSample(const auth::Identity& who, const Podmetric& m,
                                     absl::Time now) {
  const uint64_t now_us = static_cast<uint64_t>(std::max<int64_t>(0, absl::ToUnixMicros(now)));
  if (m.seq > now_us + kMaxSeqAheadMicros) {
    Count("seq");
    return absl::PermissionDeniedError(absl::StrCat(
        "seq: ", m.seq, " is more than 1h ahead of this scaler's clock in microseconds (", now_us,
        "); sidecars number samples from their start time in microseconds, so it is "
        "refused rather than stored as the pod's high-water mark"));
  }
  if (access_->insecure()) return absl::OkStatus();
  if (m.id != who.pod) {
    Count("id");
    return absl::PermissionDeniedError(absl::StrCat("id: ", Quote(m.id),
                                                    " is not the pod this credential is bound "
                                                    "to (",
                                                    Quote(who.pod),
                                                    "); a pod reports only for itself"));
  }
  if (!who.workload.empty()) {
    if (m.workload != who.workload) {
      Count("workload");
      return absl::PermissionDeniedError(
          absl::StrCat("workload: ", Quote(m.workload), " is not the workload of pod ",
                       Quote(who.pod), " (", Quote(who.workload), ")"));
    }
    return absl::OkStatus();
  }
  if (owners_ == nullptr) return absl::OkStatus();
  const std::string owner = owners_->OwnerOf(who.pod);
  if (!owner.empty() ? m.workload != owner
                     : (!m.workload.empty() && owners_->HasView(m.workload))) {
    Count("workload");
    return absl::PermissionDeniedError(absl::StrCat(
        "workload: ", Quote(m.workload), " is not the workload of pod ", Quote(who.pod),
        owner.empty() ? " (Kubernetes does not list the pod for it)"
                      : absl::StrCat(" (Kubernetes lists it for ", Quote(owner), ")")));
  }
  return absl::OkStatus();
}

}  // namespace zeroscale::ingest

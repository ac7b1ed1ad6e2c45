#include "scaler/decide/history.h"

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace zeroscale::decide {

std::string DecisionsKey(absl::string_view workload) {
  return absl::StrCat("zeroscale:decisions:", workload);
}

std::string KeepAliveKey(absl::string_view workload) {
  return absl::StrCat("zeroscale:keepalive:", workload);
}

void DecisionHistory::OnKeepAlive(const std::string& workload, const std::string& state) {
  absl::StatusOr<RedisReply> r = redis_->Command({"SET", KeepAliveKey(workload), state});
  if (!r.ok() || r->is_error()) {
    ++failures_;
    ZS_LOG(kWarning, "keep-alive state not written", {"workload", workload},
           {"error", r.ok() ? r->str : r.status().ToString()});
  }
}

absl::StatusOr<std::string> DecisionHistory::ReadKeepAlive(absl::string_view workload) {
  ZS_ASSIGN_OR_RETURN(RedisReply reply, redis_->Command({"GET", KeepAliveKey(workload)}));
  if (reply.is_error()) {
    return absl::FailedPreconditionError(
        absl::StrCat("redis refused ", KeepAliveKey(workload), ": ", reply.str));
  }
  return reply.is_nil() ? std::string() : reply.str;
}

absl::Status DecisionHistory::Append(const Decision& decision) {
  const std::string key = DecisionsKey(decision.workload);
  ZS_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                      redis_->Pipeline({{"MULTI"},
                                        {"LPUSH", key, DecisionToJson(decision)},
                                        {"LTRIM", key, "0", absl::StrCat(capacity_ - 1)},
                                        {"EXEC"}}));
  const RedisReply& exec = replies.back();
  if (exec.type != RedisReply::Type::kArray) {
    return absl::UnavailableError(absl::StrCat("redis transaction aborted: ",
                                               exec.is_error() ? exec.str : "EXEC returned nil"));
  }
  for (const RedisReply& r : exec.elements) {
    // E.g. the key holds another type: retrying will not help.
    if (r.is_error()) {
      return absl::FailedPreconditionError(absl::StrCat("redis refused ", key, ": ", r.str));
    }
  }
  return absl::OkStatus();
}

void DecisionHistory::Record(const Decision& decision) {
  absl::Status s = Append(decision);
  if (!s.ok()) {
    ++failures_;
    ZS_LOG(kWarning, "decision history not written", {"workload", decision.workload},
           {"error", s.ToString()});
  }
}

absl::StatusOr<std::vector<Decision>> DecisionHistory::Read(absl::string_view workload,
                                                            size_t limit, size_t* skipped) {
  std::vector<Decision> out;
  if (skipped != nullptr) *skipped = 0;
  if (limit == 0) return out;
  ZS_ASSIGN_OR_RETURN(RedisReply reply, redis_->Command({"LRANGE", DecisionsKey(workload), "0",
                                                         absl::StrCat(limit - 1)}));
  out.reserve(reply.elements.size());
  for (const RedisReply& e : reply.elements) {
    absl::StatusOr<Decision> d = DecisionFromJson(e.str);
    if (!d.ok()) {
      if (skipped != nullptr) ++*skipped;
      continue;
    }
    out.push_back(*std::move(d));
  }
  return out;
}

}  // namespace zeroscale::decide

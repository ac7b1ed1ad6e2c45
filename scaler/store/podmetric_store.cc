#include "scaler/store/podmetric_store.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace zeroscale::store {

std::string PodmetricKey(absl::string_view pod_id) { return absl::StrCat("podmetric:", pod_id); }

std::string WorkloadPodsKey(absl::string_view workload) {
  return absl::StrCat("zeroscale:workload:", workload, ":pods");
}

EncodedPodmetric Encode(Podmetric sample) {
  EncodedPodmetric e;
  e.json = PodmetricToJson(sample);
  e.score = absl::StrCat(static_cast<int64_t>(
      std::floor(absl::ToDoubleSeconds(sample.received_at - absl::UnixEpoch()))));
  e.sample = std::move(sample);
  return e;
}

PodmetricStore::PodmetricStore(Redis* redis, const Clock* clock, Options options)
    : redis_(redis), clock_(clock), options_(options) {}

absl::Status PodmetricStore::Ping() { return redis_->Command({"PING"}).status(); }

absl::Status PodmetricStore::LoadMarks(const std::vector<const EncodedPodmetric*>& samples) {
  RedisCommand hmget = {"HMGET", kLastSeqKey};
  absl::flat_hash_set<absl::string_view> asked;
  for (const EncodedPodmetric* e : samples) {
    const Podmetric* m = &e->sample;
    if (m->seq == 0 || last_seq_.contains(m->id) || !asked.insert(m->id).second) continue;
    hmget.push_back(m->id);
  }
  if (hmget.size() == 2) return absl::OkStatus();
  ZS_ASSIGN_OR_RETURN(RedisReply reply, redis_->Command(hmget));
  for (size_t i = 2; i < hmget.size(); ++i) {
    uint64_t v = 0;
    const RedisReply& e = reply.elements.at(i - 2);
    if (e.type == RedisReply::Type::kString) (void)absl::SimpleAtoi(e.str, &v);
    last_seq_[hmget[i]] = v;
  }
  return absl::OkStatus();
}

absl::StatusOr<WriteResult> PodmetricStore::Write(
    const std::vector<const EncodedPodmetric*>& samples) {
  WriteResult result;
  if (samples.empty()) return result;
  ZS_RETURN_IF_ERROR(LoadMarks(samples));

  const absl::Time now = clock_->Now();
  std::vector<RedisCommand> cmds;
  cmds.reserve(samples.size() + 8);
  cmds.push_back({"MULTI"});
  // Index of the ZADD for each sample, or -1 for a duplicate.
  std::vector<int> zadd_at(samples.size(), -1);
  absl::flat_hash_map<absl::string_view, uint64_t> new_marks;
  absl::flat_hash_set<std::string> touched;
  RedisCommand index_cmds;
  for (size_t i = 0; i < samples.size(); ++i) {
    const Podmetric& m = samples[i]->sample;
    if (m.seq != 0) {
      uint64_t& mark = new_marks.try_emplace(m.id, last_seq_[m.id]).first->second;
      if (m.seq <= mark) {
        ++result.duplicates;
        continue;
      }
      mark = m.seq;
    }
    std::string key = PodmetricKey(m.id);
    zadd_at[i] = static_cast<int>(cmds.size());
    cmds.push_back({"ZADD", key, samples[i]->score, samples[i]->json});
    if (!m.workload.empty() && indexed_.insert(absl::StrCat(m.workload, "\n", m.id)).second) {
      cmds.push_back({"SADD", WorkloadPodsKey(m.workload), m.id});
      cmds.push_back({"SADD", kWorkloadsKey, m.workload});
    }
    touched.insert(std::move(key));
  }
  if (!new_marks.empty()) {
    RedisCommand hset = {"HSET", kLastSeqKey};
    for (const auto& [pod, seq] : new_marks) {
      hset.push_back(std::string(pod));
      hset.push_back(absl::StrCat(seq));
    }
    cmds.push_back(std::move(hset));
  }
  const std::string cutoff = absl::StrCat(
      "(", static_cast<int64_t>(absl::ToUnixSeconds(now - options_.retention)));
  const std::string ttl = absl::StrCat(
      static_cast<int64_t>(absl::ToInt64Seconds(options_.retention + options_.trim_interval)) + 1);
  std::vector<std::string> trimmed;
  for (const std::string& key : touched) {
    auto [it, inserted] = last_trim_.try_emplace(key, absl::InfinitePast());
    if (now - it->second < options_.trim_interval) continue;
    // Trim history and let a key whose pod went away expire on its own.
    cmds.push_back({"ZREMRANGEBYSCORE", key, "-inf", cutoff});
    cmds.push_back({"EXPIRE", key, ttl});
    trimmed.push_back(key);
  }
  if (cmds.size() == 1) return result;  // all duplicates
  cmds.push_back({"EXEC"});

  absl::StatusOr<std::vector<RedisReply>> replies = redis_->Pipeline(cmds);
  if (!replies.ok()) {
    // Nothing was applied (no EXEC seen): forget index entries we assumed written.
    indexed_.clear();
    return replies.status();
  }
  const RedisReply& exec = replies->back();
  if (exec.type != RedisReply::Type::kArray) {
    indexed_.clear();
    return absl::UnavailableError(absl::StrCat(
        "redis transaction aborted: ", exec.is_error() ? exec.str : "EXEC returned nil"));
  }
  // EXEC's array holds one reply per queued command (all but MULTI and EXEC).
  for (size_t i = 0; i < samples.size(); ++i) {
    if (zadd_at[i] < 0) continue;
    const RedisReply& r = exec.elements.at(zadd_at[i] - 1);
    if (r.is_error()) {
      result.failed.emplace_back(
          i, absl::FailedPreconditionError(absl::StrCat("id: redis refused ",
                                                        PodmetricKey(samples[i]->sample.id), ": ", r.str)));
    } else {
      ++result.stored;
    }
  }
  for (const auto& [pod, seq] : new_marks) last_seq_[pod] = seq;
  for (const std::string& key : trimmed) last_trim_[key] = now;
  return result;
}

absl::StatusOr<std::vector<Podmetric>> PodmetricStore::Range(absl::string_view pod_id,
                                                              absl::Time start, absl::Time end) {
  ZS_ASSIGN_OR_RETURN(RedisReply reply,
                      redis_->Command({"ZRANGEBYSCORE", PodmetricKey(pod_id),
                                       absl::StrCat(absl::ToUnixSeconds(start)),
                                       absl::StrCat(absl::ToUnixSeconds(end))}));
  std::vector<Podmetric> out;
  out.reserve(reply.elements.size());
  for (const RedisReply& e : reply.elements) {
    absl::StatusOr<Podmetric> m = PodmetricFromJson(e.str);
    if (!m.ok()) {
      return absl::DataLossError(absl::StrCat("unparsable member in ", PodmetricKey(pod_id), ": ",
                                              m.status().message()));
    }
    out.push_back(*std::move(m));
  }
  return out;
}

absl::Status PodmetricStore::ForgetVanishedPods() {
  ZS_ASSIGN_OR_RETURN(RedisReply pods, redis_->Command({"HKEYS", kLastSeqKey}));
  if (pods.elements.empty()) return absl::OkStatus();
  std::vector<RedisCommand> exists;
  for (const RedisReply& p : pods.elements) exists.push_back({"EXISTS", PodmetricKey(p.str)});
  ZS_ASSIGN_OR_RETURN(std::vector<RedisReply> found, redis_->Pipeline(exists));
  RedisCommand hdel = {"HDEL", kLastSeqKey};
  for (size_t i = 0; i < found.size(); ++i) {
    if (found[i].type == RedisReply::Type::kInteger && found[i].integer == 0) {
      hdel.push_back(pods.elements[i].str);
      last_seq_.erase(pods.elements[i].str);
      last_trim_.erase(PodmetricKey(pods.elements[i].str));
    }
  }
  if (hdel.size() > 2) ZS_RETURN_IF_ERROR(redis_->Command(hdel).status());
  return absl::OkStatus();
}

}  // namespace zeroscale::store

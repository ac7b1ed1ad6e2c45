#include "scaler/store/podmetric_store.h"

#include <cmath>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status_macros.h"

namespace zeroscale::store {

std::string PodmetricKey(absl::string_view pod_id) { return absl::StrCat("podmetric:", pod_id); }

std::string WorkloadPodsKey(absl::string_view workload) {
  return absl::StrCat("zeroscale:workload:", workload, ":pods");
}

std::string WriterMarkerKey(absl::string_view writer_id) {
  return absl::StrCat("zeroscale:writer:", writer_id);
}

namespace {

std::string RandomWriterId() {
  absl::BitGen gen;
  return absl::StrCat(absl::Hex(absl::Uniform<uint64_t>(gen), absl::kZeroPad16));
}

// One SADD per workload (its pods) and one SADD of the workloads.
void AppendIndexCommands(const PodmetricStore::IndexEntries& entries,
                         std::vector<RedisCommand>* cmds) {
  if (entries.empty()) return;
  RedisCommand workloads = {"SADD", kWorkloadsKey};
  for (const auto& [workload, pods] : entries) {
    RedisCommand sadd = {"SADD", WorkloadPodsKey(workload)};
    sadd.insert(sadd.end(), pods.begin(), pods.end());
    cmds->push_back(std::move(sadd));
    workloads.push_back(workload);
  }
  cmds->push_back(std::move(workloads));
}

}  // namespace

EncodedPodmetric Encode(Podmetric sample) {
  EncodedPodmetric e;
  e.json = PodmetricToJson(sample);
  e.score = absl::StrCat(static_cast<int64_t>(
      std::floor(absl::ToDoubleSeconds(sample.received_at - absl::UnixEpoch()))));
  e.sample = std::move(sample);
  return e;
}

PodmetricStore::PodmetricStore(Redis* redis, const Clock* clock, Options options)
    : redis_(redis),
      clock_(clock),
      options_(std::move(options)),
      marker_key_(
          WriterMarkerKey(options_.writer_id.empty() ? RandomWriterId() : options_.writer_id)) {}

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
  const std::string ttl = absl::StrCat(
      static_cast<int64_t>(absl::ToInt64Seconds(options_.retention + options_.trim_interval)) + 1);
  std::vector<RedisCommand> cmds;
  cmds.reserve(samples.size() + 8);
  cmds.push_back({"MULTI"});
  // First in the transaction, so its reply is the first of EXEC's: OK when it was missing.
  cmds.push_back({"SET", marker_key_, "1", "NX"});
  cmds.push_back({"EXPIRE", marker_key_, ttl});
  const size_t header = cmds.size();
  // Index of the ZADD for each sample, or -1 for a duplicate.
  std::vector<int> zadd_at(samples.size(), -1);
  absl::flat_hash_map<absl::string_view, uint64_t> new_marks;
  absl::flat_hash_map<absl::string_view, absl::string_view> touched;  // pod -> its workload
  IndexEntries batch_pods;  // every (workload, pod) of the batch
  IndexEntries index;       // the entries this transaction writes
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
    zadd_at[i] = static_cast<int>(cmds.size());
    cmds.push_back({"ZADD", PodmetricKey(m.id), samples[i]->score, samples[i]->json});
    if (!m.workload.empty()) {
      batch_pods[m.workload].insert(m.id);
      if (indexed_.insert(absl::StrCat(m.workload, "\n", m.id)).second) {
        index[m.workload].insert(m.id);
      }
    }
    touched[m.id] = m.workload;
  }
  if (cmds.size() == header) return result;  // all duplicates
  if (!new_marks.empty()) {
    RedisCommand hset = {"HSET", kLastSeqKey};
    for (const auto& [pod, seq] : new_marks) {
      hset.push_back(std::string(pod));
      hset.push_back(absl::StrCat(seq));
    }
    cmds.push_back(std::move(hset));
  }
  const std::vector<std::string> trimmed = QueueTrims(touched, now, ttl, &cmds, &index);
  AppendIndexCommands(index, &cmds);
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
    return absl::UnavailableError(absl::StrCat("redis transaction aborted: ",
                                               exec.is_error() ? exec.str : "EXEC returned nil"));
  }
  // EXEC's array holds one reply per queued command (all but MULTI and EXEC).
  for (size_t i = 0; i < samples.size(); ++i) {
    if (zadd_at[i] < 0) continue;
    const RedisReply& r = exec.elements.at(zadd_at[i] - 1);
    if (r.is_error()) {
      result.failed.emplace_back(
          i, absl::FailedPreconditionError(absl::StrCat(
                 "id: redis refused ", PodmetricKey(samples[i]->sample.id), ": ", r.str)));
    } else {
      ++result.stored;
    }
  }
  for (const auto& [pod, seq] : new_marks) last_seq_[pod] = seq;
  for (const std::string& key : trimmed) last_trim_[key] = now;
  const bool marker_was_missing = exec.elements.at(0).type == RedisReply::Type::kStatus;
  if (marker_was_missing && marker_written_) Reindex(batch_pods, index, ttl, &result);
  marker_written_ = true;
  return result;
}

std::vector<std::string> PodmetricStore::QueueTrims(
    const absl::flat_hash_map<absl::string_view, absl::string_view>& touched, absl::Time now,
    const std::string& ttl, std::vector<RedisCommand>* cmds, IndexEntries* index) {
  const std::string cutoff =
      absl::StrCat("(", static_cast<int64_t>(absl::ToUnixSeconds(now - options_.retention)));
  std::vector<std::string> trimmed;
  for (const auto& [pod, workload] : touched) {
    std::string key = PodmetricKey(pod);
    auto [it, inserted] = last_trim_.try_emplace(key, absl::InfinitePast());
    if (now - it->second < options_.trim_interval) continue;
    // Trim history and let a key whose pod went away expire on its own; write the pod's
    // index entry again, which repairs whatever removed it.
    cmds->push_back({"ZREMRANGEBYSCORE", key, "-inf", cutoff});
    cmds->push_back({"EXPIRE", key, ttl});
    if (!workload.empty()) (*index)[workload].insert(std::string(pod));
    trimmed.push_back(std::move(key));
  }
  return trimmed;
}

void PodmetricStore::Reindex(const IndexEntries& batch, const IndexEntries& written,
                             const std::string& ttl, WriteResult* result) {
  ZS_LOG(kWarning,
         "this writer's marker was missing from redis (restarted empty, flushed, volume lost, or "
         "nothing written for its lifetime): writing the workload and pod indexes again",
         {"marker", marker_key_});
  result->reindexed = true;
  // What was indexed or trimmed before may be gone: every pod is indexed (and its key
  // given a TTL) again at its next sample; the pods of this batch now.
  indexed_.clear();
  last_trim_.clear();
  IndexEntries missing;
  for (const auto& [workload, pods] : batch) {
    auto done = written.find(workload);
    for (const std::string& pod : pods) {
      if (done != written.end() && done->second.contains(pod)) {
        indexed_.insert(absl::StrCat(workload, "\n", pod));
      } else {
        missing[workload].insert(pod);
      }
    }
  }
  if (missing.empty()) return;
  std::vector<RedisCommand> cmds;
  AppendIndexCommands(missing, &cmds);
  for (const auto& [workload, pods] : missing) {
    for (const std::string& pod : pods) cmds.push_back({"EXPIRE", PodmetricKey(pod), ttl});
  }
  absl::StatusOr<std::vector<RedisReply>> replies = redis_->Pipeline(cmds);
  bool ok = replies.ok();
  for (size_t i = 0; ok && i < replies->size(); ++i) ok = !(*replies)[i].is_error();
  if (!ok) {
    // Left unmarked: the next sample of each of these pods indexes it.
    ZS_LOG(kWarning, "cannot write the indexes again now; each pod's next sample will",
           {"error", replies.ok() ? "error reply" : std::string(replies.status().message())});
    return;
  }
  for (const auto& [workload, pods] : missing) {
    for (const std::string& pod : pods) indexed_.insert(absl::StrCat(workload, "\n", pod));
  }
}

absl::StatusOr<std::vector<Podmetric>> PodmetricStore::Range(absl::string_view pod_id,
                                                             absl::Time start, absl::Time end) {
  ZS_ASSIGN_OR_RETURN(RedisReply reply, redis_->Command({"ZRANGEBYSCORE", PodmetricKey(pod_id),
                                                         absl::StrCat(absl::ToUnixSeconds(start)),
                                                         absl::StrCat(absl::ToUnixSeconds(end))}));
  std::vector<Podmetric> out;
  out.reserve(reply.elements.size());
  for (const RedisReply& e : reply.elements) {
    absl::StatusOr<Podmetric> m = PodmetricFromJson(e.str);
    if (!m.ok()) {
      return absl::DataLossError(
          absl::StrCat("unparsable member in ", PodmetricKey(pod_id), ": ", m.status().message()));
    }
    out.push_back(*std::move(m));
  }
  return out;
}

absl::Status PodmetricStore::ForgetVanishedPods() {
  ZS_RETURN_IF_ERROR(ForgetVanishedMarks());
  return ForgetVanishedIndexEntries();
}

absl::Status PodmetricStore::ForgetVanishedMarks() {
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

absl::Status PodmetricStore::ForgetVanishedIndexEntries() {
  ZS_ASSIGN_OR_RETURN(RedisReply workloads, redis_->Command({"SMEMBERS", kWorkloadsKey}));
  if (workloads.elements.empty()) return absl::OkStatus();
  std::vector<RedisCommand> listings;
  for (const RedisReply& w : workloads.elements) {
    listings.push_back({"SMEMBERS", WorkloadPodsKey(w.str)});
  }
  ZS_ASSIGN_OR_RETURN(std::vector<RedisReply> listed, redis_->Pipeline(listings));
  std::vector<std::pair<size_t, const std::string*>> pods;  // (workload index, pod)
  std::vector<RedisCommand> exists;
  for (size_t w = 0; w < listed.size(); ++w) {
    for (const RedisReply& pod : listed[w].elements) {
      pods.emplace_back(w, &pod.str);
      exists.push_back({"EXISTS", PodmetricKey(pod.str)});
    }
  }
  std::vector<RedisReply> found;
  if (!exists.empty()) {
    ZS_ASSIGN_OR_RETURN(found, redis_->Pipeline(exists));
  }
  std::vector<RedisCommand> srem(listed.size());
  std::vector<size_t> live(listed.size(), 0);
  for (size_t i = 0; i < found.size(); ++i) {
    const auto& [w, pod] = pods[i];
    if (found[i].type != RedisReply::Type::kInteger || found[i].integer != 0) {
      ++live[w];
      continue;
    }
    const std::string& workload = workloads.elements[w].str;
    if (srem[w].empty()) srem[w] = {"SREM", WorkloadPodsKey(workload)};
    srem[w].push_back(*pod);
    indexed_.erase(absl::StrCat(workload, "\n", *pod));
    last_trim_.erase(PodmetricKey(*pod));
  }
  std::vector<RedisCommand> removals;
  RedisCommand gone = {"SREM", kWorkloadsKey};
  for (size_t w = 0; w < listed.size(); ++w) {
    // A listing that is not a set (another type under the key) is left alone.
    if (listed[w].is_error()) continue;
    if (!srem[w].empty()) removals.push_back(std::move(srem[w]));
    if (live[w] == 0) gone.push_back(workloads.elements[w].str);
  }
  if (gone.size() > 2) removals.push_back(std::move(gone));
  if (removals.empty()) return absl::OkStatus();
  ZS_ASSIGN_OR_RETURN(std::vector<RedisReply> removed, redis_->Pipeline(removals));
  for (const RedisReply& r : removed) {
    if (r.is_error()) return absl::InternalError(absl::StrCat("redis SREM: ", r.str));
  }
  return absl::OkStatus();
}

}  // namespace zeroscale::store

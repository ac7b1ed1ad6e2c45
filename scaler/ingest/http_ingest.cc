#include "scaler/ingest/http_ingest.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace zeroscale::ingest {
namespace {

std::string ReasonOf(const absl::Status& s) {
  std::string field = FieldOfError(s);
  // "[3].cpuUsage" counts as cpuUsage.
  if (size_t dot = field.rfind('.'); dot != std::string::npos) field = field.substr(dot + 1);
  return field.empty() ? "json" : field;
}

}  // namespace

http::Handler HttpIngestHandler(IngestQueue* queue, IngestMetrics* metrics, const Clock* clock,
                                SampleListener* listener, HttpIngestLimits limits,
                                SampleAuth* auth) {
  return [=](http::Request&& req, http::Responder respond) {
    absl::StatusOr<auth::Identity> sender = auth::Identity{};
    if (auth != nullptr) {
      sender = auth->AuthenticateSender(req.Header("Authorization"));
      if (!sender.ok()) {
        return respond(
            http::Response::Error(auth::HttpStatusOf(sender.status()), sender.status().message()));
      }
    }
    absl::StatusOr<std::vector<Podmetric>> parsed =
        PodmetricsFromJsonBody(req.body, limits.max_items);
    if (!parsed.ok()) {
      metrics->received_http.Increment();
      const bool too_large = parsed.status().code() == absl::StatusCode::kResourceExhausted;
      metrics->Rejected(too_large ? "size" : ReasonOf(parsed.status()));
      return respond(http::Response::Error(too_large ? 413 : 400, parsed.status().message()));
    }
    std::vector<Podmetric>& samples = *parsed;
    metrics->received_http.Increment(static_cast<double>(samples.size()));
    if (samples.empty()) return respond(http::Response::Json(200, "{\"stored\":0}\n"));
    const absl::Time now = clock->Now();
    for (size_t i = 0; i < samples.size(); ++i) {
      samples[i].received_at = now;
      absl::Status s = ValidatePodmetric(samples[i], now);
      int status = 400;
      if (s.ok() && auth != nullptr) {
        s = auth->CheckSample(*sender, samples[i], now);
        status = 403;
      }
      if (!s.ok()) {
        metrics->Rejected(ReasonOf(s), static_cast<double>(samples.size()));
        // Items of an array body are named by index, as parse errors are.
        const size_t first = req.body.find_first_not_of(" \t\r\n");
        const bool array = first != std::string::npos && req.body[first] == '[';
        const std::string msg =
            array ? absl::StrCat("[", i, "].", s.message()) : std::string(s.message());
        return respond(http::Response::Error(status, msg));
      }
    }
    if (!queue->redis_up() || !queue->HasSpace()) {
      http::Response r = http::Response::Error(
          503, queue->redis_up() ? "ingest queue is full; retry shortly"
                                 : "redis is unreachable; nothing was stored, retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      return respond(std::move(r));
    }
    if (listener != nullptr) listener->OnSamples(samples);
    const size_t n = samples.size();
    std::vector<store::EncodedPodmetric> encoded;
    encoded.reserve(n);
    for (Podmetric& m : samples) encoded.push_back(store::Encode(std::move(m)));
    queue->Submit(std::move(encoded), /*fresh_stream=*/true, [respond, n](const Outcome& outcome) {
      if (!outcome.failed.empty()) {
        return respond(http::Response::Error(
            500,
            absl::StrCat("[", outcome.failed[0].first, "].", outcome.failed[0].second.message())));
      }
      respond(http::Response::Json(200, absl::StrCat("{\"stored\":", n, "}\n")));
    });
  };
}

}  // namespace zeroscale::ingest

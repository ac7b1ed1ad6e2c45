// An in-process fake Kubernetes API server for tests, speaking the real wire format over
// HTTP on 127.0.0.1: JSON objects with a global resourceVersion counter, 409 on a stale
// resourceVersion, the Scale subresource of Deployments/StatefulSets (omitting zero
// fields as the real server does; merge and JSON patches, a failed JSON-patch test
// answered 422 as the real server does), status subresources, lists carrying
// metadata.resourceVersion, watches as long-lived chunked streams of newline-delimited
// JSON events sent as changes happen, bookmarks, 410 Gone for compacted history, and
// injectable faults (429 with Retry-After, 5xx). Lists and watches honour an
// equality-based labelSelector on metadata.labels ("k=v", "k==v", "k!=v", "k", "!k",
// comma-separated; set-based forms answer 400): as on the real server, an object whose
// labels change into or out of a watch's selection arrives as ADDED or DELETED. Any
// namespaced resource under /api/v1 or /apis/GROUP/VERSION works generically (Leases,
// Events, CustomAutoscalers, EndpointSlices...).
//
// Objects cross this header as JSON text so that tests choose their own JSON library.
// Thread-safety: every method is thread-safe; requests are served on a thread each.
#ifndef ZEROSCALE_TESTS_TESTING_FAKE_APISERVER_H_
#define ZEROSCALE_TESTS_TESTING_FAKE_APISERVER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace zeroscale::testing {

class FakeApiServer {
 public:
  struct RequestRecord {
    std::string method;
    std::string target;  // path and query
    std::string authorization;
    std::string content_type;
    std::string body;
    int status = 0;
    // When the whole request had been read, before it was handled: what latency
    // measurements take as "the request reached the API server".
    absl::Time received_at;
  };

  FakeApiServer();
  ~FakeApiServer();  // stops
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Binds a free port on 127.0.0.1 and starts serving.
  absl::Status Start();
  // Ends open watches and connections and joins every thread.
  void Stop();
  uint16_t port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"

  // --- Objects, addressed as in the API: collection "/apis/apps/v1/namespaces/ml/
  // deployments", object = collection + "/NAME". Each write bumps the resourceVersion
  // and feeds watches, exactly as the HTTP verbs do. Return the stored JSON.
  absl::StatusOr<std::string> Create(absl::string_view collection, absl::string_view json);
  // Replaces the object (spec and status), creating it if absent.
  absl::StatusOr<std::string> Apply(absl::string_view collection, absl::string_view json);
  absl::StatusOr<std::string> Get(absl::string_view object_path) const;
  absl::Status Delete(absl::string_view object_path);
  // Every object of a collection (namespaced path, or all namespaces with
  // "/apis/G/V/RESOURCE"), as JSON texts.
  std::vector<std::string> List(absl::string_view collection) const;
  // Convenience: an apps/v1 Deployment (or StatefulSet) with spec.replicas, a selector
  // app=NAME and status.replicas equal to spec.replicas.
  absl::StatusOr<std::string> CreateWorkload(absl::string_view ns, absl::string_view kind,
                                             absl::string_view name, int32_t replicas);
  int64_t resource_version() const;

  // --- Watches.
  // Sends a BOOKMARK at the current resourceVersion to every open watch that allows them.
  void SendBookmarks();
  // Forgets the history: a watch from any resourceVersion before now gets 410 Gone.
  void Compact();
  // Newer servers answer a too-old watch with 200 and an ERROR event (code 410) rather
  // than an HTTP 410; this chooses which.
  void SetGoneAsErrorEvent(bool as_event);
  // Ends every open watch cleanly, as the server does at timeoutSeconds.
  void CloseWatches();
  int open_watches() const;
  // Waits until at least `n` watches are open (or have been opened in total when
  // `total` is set); false on timeout.
  bool WaitForWatches(int n, absl::Duration timeout, bool total = false) const;

  // --- Faults and auth.
  // The next `count` requests whose target contains `path_substring` answer `status`
  // with a metav1.Status body (and Retry-After when retry_after_seconds >= 0).
  void FailNext(int count, int status, int retry_after_seconds = -1,
                std::string path_substring = "");
  // Requests without "Authorization: Bearer <token>" get 401. Empty turns it off.
  void RequireToken(std::string token);

  // --- Observations.
  std::vector<RequestRecord> requests() const;
  int CountRequests(absl::string_view method, absl::string_view target_substring) const;
  // Blocks until a request of `method` whose target contains `target_substring` has been
  // answered with a 2xx status and logged at index `from` of requests() or later; its
  // record, or nullopt after `timeout`. Lets a measurement wait for a write without
  // polling the log (which would compete for the CPU with what is measured).
  std::optional<RequestRecord> WaitForRequest(absl::string_view method,
                                              absl::string_view target_substring,
                                              absl::Duration timeout, size_t from = 0) const;
  // How many requests have been logged: a `from` for WaitForRequest.
  size_t request_count() const;
  // Blocks until more than `count` requests have been logged, whatever their method and
  // status; false after `timeout`. Lets a test re-check what it waits for after every
  // answer instead of polling.
  bool WaitForRequestsBeyond(size_t count, absl::Duration timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace zeroscale::testing

#endif  // ZEROSCALE_TESTS_TESTING_FAKE_APISERVER_H_

// The HTTPS endpoint of the sidecar-injecting admission webhook: POST /mutate on
// --webhook-listen, answering AdmissionReviews through admission.h, counting what it did
// on the scaler's Prometheus registry:
//   zeroscale_webhook_injected_total
//   zeroscale_webhook_skipped_total{reason}   opted_out, not_requested, already_injected,
//                                             missing_port, invalid_annotation,
//                                             port_conflict, not_create, error
//   zeroscale_webhook_errors_total{reason}    bad_request (answered 400), internal
//
// Thread-safety: Start/Stop from one thread; requests are served on the server's threads.
#ifndef ZEROSCALE_SCALER_WEBHOOK_WEBHOOK_SERVER_H_
#define ZEROSCALE_SCALER_WEBHOOK_WEBHOOK_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config/flags.h"
#include "common/file/watched_file.h"
#include "common/http/http_server.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"
#include "scaler/webhook/sidecar_patch.h"

namespace zeroscale::webhook {

class WebhookMetrics {
 public:
  explicit WebhookMetrics(prometheus::Registry* registry);
  prometheus::Counter& injected;
  void Skipped(absl::string_view reason) {
    skipped_.Add({{"reason", std::string(reason)}}).Increment();
  }
  void Error(absl::string_view reason) {
    errors_.Add({{"reason", std::string(reason)}}).Increment();
  }

 private:
  prometheus::Family<prometheus::Counter>& skipped_;
  prometheus::Family<prometheus::Counter>& errors_;
};

// The POST /mutate handler, without the transport (tests drive it directly too). With
// `scaler_ca`, each injection carries its current content as the sidecar's CA bundle.
http::Handler MutateHandler(const InjectorOptions* options, WebhookMetrics* metrics,
                            WatchedFile* scaler_ca = nullptr);

struct WebhookOptions {
  config::HostPort listen;
  std::string cert_file;
  std::string key_file;
  absl::Duration cert_reload_check = absl::Seconds(5);
  InjectorOptions injector;
  // PEM CA bundle injected sidecars verify the scaler with, re-read when it changes
  // (injector.scaler_ca_data follows it); empty: none.
  std::string scaler_ca_file;
  int64_t max_connections = 256;              // more wait in the backlog
  net::ListenerObserver* observer = nullptr;  // not owned; may be null
};

class WebhookServer {
 public:
  // Loads the certificate and listens. kFailedPrecondition names the certificate or key
  // file that cannot be used, or the address that cannot be bound.
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Start(WebhookOptions options,
                                                              prometheus::Registry* registry);
  ~WebhookServer();  // stops
  void Stop();
  uint16_t port() const;

 private:
  WebhookServer(WebhookOptions options, prometheus::Registry* registry);

  const WebhookOptions options_;
  WebhookMetrics metrics_;
  std::unique_ptr<WatchedFile> scaler_ca_;  // null without scaler_ca_file
  http::Router router_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace zeroscale::webhook

#endif  // ZEROSCALE_SCALER_WEBHOOK_WEBHOOK_SERVER_H_

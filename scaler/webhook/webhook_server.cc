#include "scaler/webhook/webhook_server.h"

#include <utility>

#include "common/http/tls_server.h"
#include "common/log/log.h"
#include "scaler/webhook/admission.h"

namespace zeroscale::webhook {

WebhookMetrics::WebhookMetrics(prometheus::Registry* r)
    : injected(prometheus::BuildCounter()
                   .Name("zeroscale_webhook_injected_total")
                   .Help("Pods the admission webhook added the zeroscale sidecar to")
                   .Register(*r)
                   .Add({})),
      skipped_(prometheus::BuildCounter()
                   .Name("zeroscale_webhook_skipped_total")
                   .Help("Pods admitted without injection, by reason")
                   .Register(*r)),
      errors_(prometheus::BuildCounter()
                  .Name("zeroscale_webhook_errors_total")
                  .Help("Admission requests that could not be handled, by reason")
                  .Register(*r)) {}

http::Handler MutateHandler(const InjectorOptions* options, WebhookMetrics* metrics,
                            WatchedFile* scaler_ca) {
  return [options, metrics, scaler_ca](http::Request&& req, http::Responder respond) {
    InjectorOptions with_ca;
    const InjectorOptions* injector = options;
    if (scaler_ca != nullptr) {
      with_ca = *options;
      with_ca.scaler_ca_data = scaler_ca->Current();
      injector = &with_ca;
    }
    absl::StatusOr<AdmissionAnswer> answer = Admit(req.body, *injector);
    if (!answer.ok()) {
      metrics->Error("bad_request");
      ZS_LOG(kWarning, "admission request refused",
             {"error", std::string(answer.status().message())}, {"from", req.remote_ip});
      return respond(http::Response::Error(400, answer.status().message()));
    }
    const Injection& injection = answer->injection;
    if (!answer->error.empty()) {
      metrics->Error("internal");
      ZS_LOG(kError, "admission request answered unchanged after an unexpected failure",
             {"pod", answer->pod}, {"error", answer->error});
    }
    if (injection.inject) {
      metrics->injected.Increment();
      ZS_LOG(kInfo, "sidecar injected", {"pod", answer->pod}, {"workload", injection.workload});
    } else {
      metrics->Skipped(injection.skip_reason);
      ZS_LOG(kDebug, "sidecar not injected", {"pod", answer->pod},
             {"reason", injection.skip_reason});
    }
    for (const std::string& w : injection.warnings) {
      ZS_LOG(kWarning, "admission warning", {"pod", answer->pod}, {"warning", w});
    }
    respond(http::Response::Json(200, std::move(answer->body)));
  };
}

WebhookServer::WebhookServer(WebhookOptions options, prometheus::Registry* registry)
    : options_(std::move(options)), metrics_(registry) {
  if (!options_.scaler_ca_file.empty()) {
    scaler_ca_ = std::make_unique<WatchedFile>(
        options_.scaler_ca_file, "scaler CA bundle", options_.cert_reload_check,
        [](const std::string& pem) { return http::CheckCaBundle(pem, "CA bundle"); });
  }
  router_.Handle("POST", "/mutate", MutateHandler(&options_.injector, &metrics_, scaler_ca_.get()));
  http::ServerOptions server_options;
  server_options.listen = options_.listen;
  server_options.threads = 1;
  // AdmissionReviews carry one pod; the API server's own request limit is 3 MiB.
  server_options.max_body_bytes = 4 << 20;
  server_options.max_connections = options_.max_connections;
  server_options.name = "webhook";
  server_options.observer = options_.observer;
  http::TlsOptions tls;
  tls.cert_file = options_.cert_file;
  tls.key_file = options_.key_file;
  tls.reload_check = options_.cert_reload_check;
  server_ = http::NewTlsServer(server_options, tls, router_.AsHandler());
}

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Start(
    WebhookOptions options, prometheus::Registry* registry) {
  std::unique_ptr<WebhookServer> server(new WebhookServer(std::move(options), registry));
  if (server->scaler_ca_ != nullptr) {
    if (absl::Status s = server->scaler_ca_->Load(); !s.ok()) return s;
  }
  if (absl::Status s = server->server_->Start(); !s.ok()) return s;
  return server;
}

WebhookServer::~WebhookServer() { Stop(); }
void WebhookServer::Stop() { server_->Stop(); }
uint16_t WebhookServer::port() const { return server_->port(); }

}  // namespace zeroscale::webhook

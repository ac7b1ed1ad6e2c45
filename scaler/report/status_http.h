// HTTP endpoints that explain the scaler's decisions to a person:
//   GET /workloads                      every managed workload: state, replicas, pods,
//                                       the last decision and why nothing else happened
//   GET /decisions?workload=W&limit=N   the workload's recent decisions, newest first
// This is how "why does my model have 0 replicas?" gets an answer. With `access`, they
// need workloads list and decisions list ("Authorization: Bearer"; 401/403/503).
//
// Thread-safe: handlers run on HTTP threads; workload states come from the StatusBoard
// the decider pushes to (the loop is never asked); history reads use their own Redis
// connection under a lock.
#ifndef ZEROSCALE_SCALER_REPORT_STATUS_HTTP_H_
#define ZEROSCALE_SCALER_REPORT_STATUS_HTTP_H_

#include <mutex>

#include "common/auth/access_control.h"
#include "common/http/http_server.h"
#include "scaler/activation/endpoint_registry.h"
#include "scaler/decide/history.h"
#include "scaler/report/status_board.h"

namespace zeroscale::report {

class StatusHttp {
 public:
  // `history` must use a Redis connection of its own (it is used under this object's
  // lock only).
  StatusHttp(const StatusBoard* board, decide::DecisionHistory* history,
             activation::EndpointRegistry* registry, auth::AccessControl* access = nullptr)
      : board_(board), history_(history), registry_(registry), access_(access) {}

  void Register(http::Router* router);

 private:
  http::Response Workloads();
  http::Response Decisions(const http::Request& req);

  const StatusBoard* const board_;
  std::mutex history_mu_;
  decide::DecisionHistory* const history_;
  activation::EndpointRegistry* const registry_;
  auth::AccessControl* const access_;
};

}  // namespace zeroscale::report

#endif  // ZEROSCALE_SCALER_REPORT_STATUS_HTTP_H_

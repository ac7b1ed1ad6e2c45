// GET /proxy/logs query strings: decoding and validation never crash, and an accepted
// filter is within its documented bounds.
#include <cstdint>
#include <cstdlib>

#include "balancer/admin/admin_api.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  zeroscale::http::Request req;
  req.method = "GET";
  req.path = "/proxy/logs";
  req.query.assign(reinterpret_cast<const char*>(data), size);
  req.target = req.path + "?" + req.query;
  absl::StatusOr<zeroscale::balancer::LogFilter> f = zeroscale::balancer::ParseLogFilter(req);
  if (!f.ok()) return 0;
  if (f->limit < 1 || f->limit > 1000 || f->offset > 1000000) abort();
  if (f->from && f->to && *f->from > *f->to) abort();
  return 0;
}

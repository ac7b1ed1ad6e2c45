#include "tests/testing/fake_apiserver.h"

#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "nlohmann/json.hpp"

namespace zeroscale::testing {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using json = nlohmann::json;

namespace {

// A parsed API path.
struct ApiPath {
  std::string group_version;   // "/api/v1" or "/apis/apps/v1"
  std::string resource;        // "deployments"
  std::string ns;              // "" for all namespaces
  std::string name;            // "" for the collection
  std::string subresource;     // "", "scale", "status"
  std::string label_selector;  // the query's labelSelector, decoded
  std::string ResourceKey() const { return group_version + "/" + resource; }
};

// One requirement of an equality-based label selector: "k=v" (or "k==v"), "k!=v", "k",
// "!k".
struct Requirement {
  enum class Op { kEquals, kNotEquals, kExists, kNotExists };
  std::string key;
  Op op = Op::kExists;
  std::string value;
};

// Parses a label selector as the API server does for the equality-based forms; nullopt
// for what it would refuse, and for set-based forms ("k in (a,b)"), which this fake does
// not implement.
std::optional<std::vector<Requirement>> ParseSelector(absl::string_view selector) {
  std::vector<Requirement> out;
  for (absl::string_view part : absl::StrSplit(selector, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    Requirement r;
    size_t at = 0;
    if (absl::ConsumePrefix(&part, "!")) {
      r.op = Requirement::Op::kNotExists;
      r.key = std::string(absl::StripAsciiWhitespace(part));
    } else if ((at = part.find("!=")) != absl::string_view::npos) {
      r.op = Requirement::Op::kNotEquals;
      r.key = std::string(absl::StripAsciiWhitespace(part.substr(0, at)));
      r.value = std::string(absl::StripAsciiWhitespace(part.substr(at + 2)));
    } else if ((at = part.find('=')) != absl::string_view::npos) {
      r.op = Requirement::Op::kEquals;
      r.key = std::string(absl::StripAsciiWhitespace(part.substr(0, at)));
      absl::string_view value = part.substr(at + 1);
      absl::ConsumePrefix(&value, "=");
      r.value = std::string(absl::StripAsciiWhitespace(value));
    } else {
      r.op = Requirement::Op::kExists;
      r.key = std::string(part);
    }
    if (r.key.empty() || absl::StrContains(r.key, " ") || absl::StrContains(r.value, " ") ||
        absl::StrContains(r.value, "=") || absl::StrContains(r.key, "(")) {
      return std::nullopt;
    }
    out.push_back(std::move(r));
  }
  return out;
}

// Whether `obj`'s metadata.labels satisfy every requirement (an empty selector matches all).
bool LabelsMatch(const std::vector<Requirement>& selector, const json& obj) {
  static const json kNone = json::object();
  const json* labels = &kNone;
  if (obj.is_object() && obj.contains("metadata") && obj["metadata"].is_object() &&
      obj["metadata"].contains("labels") && obj["metadata"]["labels"].is_object()) {
    labels = &obj["metadata"]["labels"];
  }
  for (const Requirement& r : selector) {
    auto it = labels->find(r.key);
    const bool has = it != labels->end() && it->is_string();
    const std::string value = has ? it->get<std::string>() : "";
    bool ok = false;
    switch (r.op) {
      case Requirement::Op::kEquals:
        ok = has && value == r.value;
        break;
      case Requirement::Op::kNotEquals:
        ok = !has || value != r.value;
        break;
      case Requirement::Op::kExists:
        ok = has;
        break;
      case Requirement::Op::kNotExists:
        ok = !has;
        break;
    }
    if (!ok) return false;
  }
  return true;
}

bool SelectorMatches(const ApiPath& p, const json& obj) {
  if (p.label_selector.empty()) return true;
  const std::optional<std::vector<Requirement>> selector = ParseSelector(p.label_selector);
  return selector && LabelsMatch(*selector, obj);
}

// Decodes a query parameter value: %XX escapes and '+' for a space.
std::string QueryUnescape(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    int hi = 0, lo = 0;
    auto hex = [](char c) {
      return absl::ascii_isdigit(c)    ? c - '0'
             : absl::ascii_isxdigit(c) ? (c | 0x20) - 'a' + 10
                                       : -1;
    };
    if (in[i] == '%' && i + 2 < in.size() && (hi = hex(in[i + 1])) >= 0 &&
        (lo = hex(in[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i] == '+' ? ' ' : in[i]);
    }
  }
  return out;
}

std::optional<ApiPath> ParsePath(absl::string_view path) {
  std::vector<std::string> seg = absl::StrSplit(path, '/', absl::SkipEmpty());
  ApiPath p;
  size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    p.group_version = "/api/" + seg[1];
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    p.group_version = "/apis/" + seg[1] + "/" + seg[2];
    i = 3;
  } else {
    return std::nullopt;
  }
  std::vector<std::string> rest(seg.begin() + i, seg.end());
  if (rest.size() == 1) {
    p.resource = rest[0];
    return p;
  }
  if (rest.size() < 3 || rest[0] != "namespaces" || rest.size() > 5) return std::nullopt;
  p.ns = rest[1];
  p.resource = rest[2];
  if (rest.size() >= 4) p.name = rest[3];
  if (rest.size() == 5) p.subresource = rest[4];
  return p;
}

std::string KindOf(const std::string& resource) {
  static const std::map<std::string, std::string> kinds = {
      {"deployments", "Deployment"},
      {"statefulsets", "StatefulSet"},
      {"customautoscalers", "CustomAutoscaler"},
      {"leases", "Lease"},
      {"events", "Event"},
      {"endpointslices", "EndpointSlice"},
      {"pods", "Pod"},
      {"configmaps", "ConfigMap"}};
  auto it = kinds.find(resource);
  if (it != kinds.end()) return it->second;
  std::string k = resource;
  if (!k.empty() && k.back() == 's') k.pop_back();
  if (!k.empty()) k[0] = static_cast<char>(toupper(k[0]));
  return k;
}

std::string ApiVersionOf(const std::string& group_version) {
  absl::string_view gv = group_version;
  if (absl::ConsumePrefix(&gv, "/apis/")) return std::string(gv);
  absl::ConsumePrefix(&gv, "/api/");
  return std::string(gv);
}

bool HasStatusSubresource(const std::string& resource) {
  return resource == "deployments" || resource == "statefulsets" || resource == "customautoscalers";
}

bool IsScalable(const std::string& resource) {
  return resource == "deployments" || resource == "statefulsets";
}

std::string GroupOf(const std::string& group_version) {
  absl::string_view gv = group_version;
  if (!absl::ConsumePrefix(&gv, "/apis/")) return "";
  return std::string(gv.substr(0, gv.find('/')));
}

struct Reply {
  int status = 200;
  json body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply StatusReply(int code, const std::string& reason, const std::string& message) {
  Reply r;
  r.status = code;
  r.body = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
            {"status", "Failure"}, {"message", message}, {"reason", reason},
            {"code", code}};
  return r;
}

std::string ResourceVersionOf(const json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return "";
  const json& m = obj["metadata"];
  return m.contains("resourceVersion") && m["resourceVersion"].is_string()
             ? m["resourceVersion"].get<std::string>()
             : "";
}

std::string NowRfc3339() {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

struct HistoryEntry {
  int64_t rv;
  std::string resource_key;
  std::string ns;
  std::string type;
  json object;
  json prev;  // the object before a MODIFIED, for label selectors; null otherwise
};

struct Fault {
  int remaining;
  int status;
  int retry_after;
  std::string path_substring;
};

}  // namespace

class FakeApiServer::Impl {
 public:
  Impl() : acceptor_(ioc_) {}
  ~Impl() { Stop(); }

  absl::Status Start() {
    beast::error_code ec;
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("fake apiserver: ", ec.message()));
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return absl::OkStatus();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (const auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    cv_.notify_all();
    if (accept_thread_.joinable()) {
      // Wake the blocking accept with a connection of our own.
      beast::error_code ec;
      tcp::socket poke(ioc_);
      poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
      accept_thread_.join();
    }
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mu_);
      threads.swap(conn_threads_);
    }
    for (std::thread& t : threads) t.join();
    beast::error_code ec;
    acceptor_.close(ec);
  }

  uint16_t port() const { return port_; }

  // --- Store operations, shared by HTTP and the test helpers. Hold mu_.

  Reply CreateLocked(const ApiPath& p, json obj) {
    if (!obj.is_object()) return StatusReply(400, "BadRequest", "body must be an object");
    json& meta = obj["metadata"];
    if (!meta.is_object()) meta = json::object();
    std::string name = meta.value("name", "");
    if (name.empty() && meta.contains("generateName")) {
      name = meta["generateName"].get<std::string>() + std::to_string(++name_seq_);
    }
    if (name.empty()) return StatusReply(422, "Invalid", "metadata.name: Required value");
    if (p.ns.empty()) return StatusReply(400, "BadRequest", "namespace required");
    auto& coll = store_[p.ResourceKey()];
    const auto key = std::make_pair(p.ns, name);
    if (coll.count(key)) {
      return StatusReply(409, "AlreadyExists",
                         absl::StrCat(p.resource, " \"", name, "\" already exists"));
    }
    meta["name"] = name;
    meta["namespace"] = p.ns;
    meta["uid"] = absl::StrCat("uid-", ++uid_seq_);
    meta["creationTimestamp"] = NowRfc3339();
    meta["generation"] = 1;
    meta.erase("generateName");
    obj["apiVersion"] = ApiVersionOf(p.group_version);
    obj["kind"] = KindOf(p.resource);
    Commit(p, "ADDED", &obj);
    coll[key] = obj;
    Reply r;
    r.status = 201;
    r.body = obj;
    return r;
  }

  // Writes `updated` over `*stored` after the checks of an update.
  Reply UpdateLocked(const ApiPath& p, json* stored, json updated, bool status_only) {
    json& meta = updated["metadata"];
    if (!meta.is_object()) meta = json::object();
    const json old_meta = (*stored)["metadata"];
    for (const char* k : {"name", "namespace", "uid", "creationTimestamp"}) {
      if (old_meta.contains(k)) meta[k] = old_meta[k];
    }
    if (HasStatusSubresource(p.resource)) {
      // With a status subresource, the main resource ignores status and vice versa.
      if (status_only) {
        json keep = *stored;
        keep["status"] = updated.contains("status") ? updated["status"] : json::object();
        keep["metadata"] = old_meta;
        updated = std::move(keep);
      } else if (stored->contains("status")) {
        updated["status"] = (*stored)["status"];
      } else {
        updated.erase("status");
      }
    }
    int64_t generation = old_meta.value("generation", int64_t{1});
    const json old_spec = stored->contains("spec") ? (*stored)["spec"] : json();
    const json new_spec = updated.contains("spec") ? updated["spec"] : json();
    if (old_spec != new_spec) ++generation;
    updated["metadata"]["generation"] = generation;
    updated["apiVersion"] = ApiVersionOf(p.group_version);
    updated["kind"] = KindOf(p.resource);
    Commit(p, "MODIFIED", &updated, stored);
    *stored = updated;
    Reply r;
    r.body = updated;
    return r;
  }

  json* Find(const ApiPath& p) {
    auto coll = store_.find(p.ResourceKey());
    if (coll == store_.end()) return nullptr;
    auto it = coll->second.find({p.ns, p.name});
    return it == coll->second.end() ? nullptr : &it->second;
  }

  Reply NotFound(const ApiPath& p) {
    std::string group = GroupOf(p.group_version);
    return StatusReply(
        404, "NotFound",
        absl::StrCat(p.resource, group.empty() ? "" : ".", group, " \"", p.name, "\" not found"));
  }

  Reply Conflict(const ApiPath& p) {
    std::string group = GroupOf(p.group_version);
    return StatusReply(
        409, "Conflict",
        absl::StrCat("Operation cannot be fulfilled on ", p.resource, group.empty() ? "" : ".",
                     group, " \"", p.name,
                     "\": the object has been modified; please apply your changes to the "
                     "latest version and try again"));
  }

  // Bumps the global resourceVersion into `obj` and records the change for watches.
  void Commit(const ApiPath& p, const std::string& type, json* obj, const json* prev = nullptr) {
    ++rv_;
    (*obj)["metadata"]["resourceVersion"] = std::to_string(rv_);
    history_.push_back({rv_, p.ResourceKey(), p.ns, type, *obj, prev ? *prev : json()});
    cv_.notify_all();
  }

  static json ScaleOf(const ApiPath& p, const json& obj) {
    const json& meta = obj["metadata"];
    json scale = {{"kind", "Scale"},
                  {"apiVersion", "autoscaling/v1"},
                  {"metadata",
                   {{"name", meta["name"]},
                    {"namespace", meta["namespace"]},
                    {"uid", meta["uid"]},
                    {"resourceVersion", meta["resourceVersion"]},
                    {"creationTimestamp", meta["creationTimestamp"]}}},
                  {"spec", json::object()},
                  {"status", json::object()}};
    // Like the real server (omitempty on int32): zero replicas are left out.
    const int64_t spec_replicas =
        obj.contains("spec") ? obj["spec"].value("replicas", int64_t{0}) : 0;
    const int64_t status_replicas =
        obj.contains("status") ? obj["status"].value("replicas", int64_t{0}) : 0;
    if (spec_replicas != 0) scale["spec"]["replicas"] = spec_replicas;
    if (status_replicas != 0) scale["status"]["replicas"] = status_replicas;
    std::vector<std::string> sel;
    if (obj.contains("spec") && obj["spec"].contains("selector") &&
        obj["spec"]["selector"].contains("matchLabels")) {
      for (const auto& [k, v] : obj["spec"]["selector"]["matchLabels"].items()) {
        sel.push_back(k + "=" + v.get<std::string>());
      }
    }
    scale["status"]["selector"] = absl::StrJoin(sel, ",");
    (void)p;
    return scale;
  }

  Reply HandleScale(const ApiPath& p, const std::string& method, const json& body,
                    bool json_patch) {
    json* obj = Find(p);
    if (obj == nullptr) return NotFound(p);
    if (method == "GET") return Reply{200, ScaleOf(p, *obj), {}};
    if (method != "PATCH" && method != "PUT") {
      return StatusReply(405, "MethodNotAllowed", "method not allowed");
    }
    json scale = ScaleOf(p, *obj);
    if (json_patch) {
      // RFC 6902 against the Scale as served (zero replicas omitted), as the real server
      // does; a failed `test` is a 422 like any patch that does not apply.
      if (!body.is_array()) return StatusReply(400, "BadRequest", "a JSON patch is a list");
      try {
        scale = scale.patch(body);
      } catch (const json::exception& e) {
        return StatusReply(422, "Invalid",
                           "the server rejected our request due to an error "
                           "in our request");
      }
    } else {
      if (!body.is_object()) return StatusReply(400, "BadRequest", "body must be an object");
      const std::string want_rv = ResourceVersionOf(body);
      if (!want_rv.empty() && want_rv != ResourceVersionOf(*obj)) return Conflict(p);
      if (method == "PATCH") {
        scale.merge_patch(body);
      } else {
        scale = body;
      }
    }
    int64_t replicas = 0;
    if (scale.contains("spec") && scale["spec"].is_object() && scale["spec"].contains("replicas")) {
      if (!scale["spec"]["replicas"].is_number_integer() ||
          scale["spec"]["replicas"].get<int64_t>() < 0) {
        return StatusReply(422, "Invalid", "spec.replicas: Invalid value: must be >= 0");
      }
      replicas = scale["spec"]["replicas"].get<int64_t>();
    }
    // The fake's "controller" reaches the desired count at once.
    (*obj)["status"]["replicas"] = replicas;
    json updated = *obj;
    updated["spec"]["replicas"] = replicas;
    UpdateLocked(p, obj, updated, /*status_only=*/false);
    return Reply{200, ScaleOf(p, *obj), {}};
  }

  Reply HandleLocked(const ApiPath& p, const std::string& method, const std::string& body_text,
                     const std::string& content_type) {
    json body;
    if (!body_text.empty()) {
      body = json::parse(body_text, nullptr, false);
      if (body.is_discarded()) return StatusReply(400, "BadRequest", "body is not JSON");
    }
    if (p.subresource == "scale") {
      if (!IsScalable(p.resource)) return NotFound(p);
      const bool json_patch = absl::StartsWith(content_type, "application/json-patch+json");
      if (method == "PATCH" && !json_patch &&
          !absl::StartsWith(content_type, "application/merge-patch+json") &&
          !absl::StartsWith(content_type, "application/strategic-merge-patch+json")) {
        return StatusReply(415, "UnsupportedMediaType", "unsupported patch type");
      }
      return HandleScale(p, method, body, method == "PATCH" && json_patch);
    }
    if (!p.subresource.empty() && p.subresource != "status") return NotFound(p);
    if (p.name.empty()) {
      if (method == "GET") return ListLocked(p);
      if (method == "POST") return CreateLocked(p, body);
      return StatusReply(405, "MethodNotAllowed", "method not allowed");
    }
    json* obj = Find(p);
    if (obj == nullptr) return NotFound(p);
    const bool status_only = p.subresource == "status";
    if (status_only && !HasStatusSubresource(p.resource)) return NotFound(p);
    if (method == "GET") return Reply{200, *obj, {}};
    if (method == "DELETE") {
      json gone = *obj;
      Commit(p, "DELETED", &gone);
      store_[p.ResourceKey()].erase({p.ns, p.name});
      return Reply{200, gone, {}};
    }
    if (!body.is_object()) return StatusReply(400, "BadRequest", "body must be an object");
    const std::string want_rv = ResourceVersionOf(body);
    if (!want_rv.empty() && want_rv != ResourceVersionOf(*obj)) return Conflict(p);
    if (method == "PUT") return UpdateLocked(p, obj, body, status_only);
    if (method == "PATCH") {
      if (!absl::StartsWith(content_type, "application/merge-patch+json") &&
          !absl::StartsWith(content_type, "application/strategic-merge-patch+json")) {
        return StatusReply(415, "UnsupportedMediaType", "unsupported patch type");
      }
      json patched = *obj;
      patched.merge_patch(body);
      return UpdateLocked(p, obj, patched, status_only);
    }
    return StatusReply(405, "MethodNotAllowed", "method not allowed");
  }

  std::vector<json> Matching(const ApiPath& p) {
    std::vector<json> out;
    auto coll = store_.find(p.ResourceKey());
    if (coll == store_.end()) return out;
    for (const auto& [key, obj] : coll->second) {
      if ((p.ns.empty() || key.first == p.ns) && SelectorMatches(p, obj)) out.push_back(obj);
    }
    return out;
  }

  Reply ListLocked(const ApiPath& p) {
    Reply r;
    r.body = {{"kind", KindOf(p.resource) + "List"},
              {"apiVersion", ApiVersionOf(p.group_version)},
              {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
              {"items", Matching(p)}};
    return r;
  }

  // --- HTTP.

  void AcceptLoop() {
    for (;;) {
      auto sock = std::make_shared<tcp::socket>(ioc_);
      beast::error_code ec;
      acceptor_.accept(*sock, ec);
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      if (ec) continue;
      sockets_.insert(sock);
      conn_threads_.emplace_back([this, sock] {
        Serve(*sock);
        std::lock_guard<std::mutex> lock(mu_);
        sockets_.erase(sock);
      });
    }
  }

  void Record(const bhttp::request<bhttp::string_body>& req, int status,
              absl::Time received_at = absl::Now()) {
    RequestRecord r;
    r.received_at = received_at;
    r.method = std::string(req.method_string());
    r.target = std::string(req.target());
    r.authorization = std::string(req[bhttp::field::authorization]);
    r.content_type = std::string(req[bhttp::field::content_type]);
    r.body = req.body();
    r.status = status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(std::move(r));
    }
    request_cv_.notify_all();
  }

  static std::string QueryParam(absl::string_view query, absl::string_view name) {
    for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
      const size_t eq = kv.find('=');
      if (kv.substr(0, eq) == name)
        return eq == absl::string_view::npos ? "" : QueryUnescape(kv.substr(eq + 1));
    }
    return "";
  }

  static bool WriteReply(tcp::socket& sock, const Reply& r, unsigned version, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(r.status), version};
    res.set(bhttp::field::content_type, "application/json");
    for (const auto& [k, v] : r.headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = r.body.dump() + "\n";
    res.prepare_payload();
    beast::error_code ec;
    bhttp::write(sock, res, ec);
    return !ec;
  }

  void Serve(tcp::socket& sock) {
    beast::flat_buffer buffer;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      beast::error_code ec;
      bhttp::read(sock, buffer, req, ec);
      if (ec) break;
      const absl::Time received_at = absl::Now();
      const std::string target(req.target());
      const size_t q = target.find('?');
      const std::string path = target.substr(0, q);
      const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
      const std::string method(req.method_string());

      std::optional<Reply> early;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!required_token_.empty() &&
            std::string(req[bhttp::field::authorization]) != "Bearer " + required_token_) {
          early = StatusReply(401, "Unauthorized", "Unauthorized");
        } else {
          for (Fault& f : faults_) {
            if (f.remaining > 0 && absl::StrContains(target, f.path_substring)) {
              --f.remaining;
              early = StatusReply(f.status, f.status == 429 ? "TooManyRequests" : "InternalError",
                                  absl::StrCat("injected fault ", f.status));
              if (f.retry_after >= 0) {
                early->headers.emplace_back("Retry-After", std::to_string(f.retry_after));
              }
              break;
            }
          }
        }
      }
      if (early) {
        Record(req, early->status, received_at);
        if (!WriteReply(sock, *early, req.version(), req.keep_alive())) break;
        if (!req.keep_alive()) break;
        continue;
      }
      std::optional<ApiPath> p = ParsePath(path);
      if (p) p->label_selector = QueryParam(query, "labelSelector");
      const std::string watch = QueryParam(query, "watch");
      const bool bad_selector = p && !ParseSelector(p->label_selector);
      if (p && !bad_selector && method == "GET" && p->name.empty() &&
          (watch == "1" || watch == "true")) {
        ServeWatch(sock, req, *p, query);
        break;  // Watches end their connection.
      }
      Reply reply;
      if (!p) {
        reply = StatusReply(404, "NotFound", "the server could not find the requested resource");
      } else if (bad_selector) {
        reply = StatusReply(
            400, "BadRequest",
            absl::StrCat("unable to parse requirement: labelSelector \"", p->label_selector, "\""));
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        reply = HandleLocked(*p, method, req.body(), std::string(req[bhttp::field::content_type]));
      }
      Record(req, reply.status, received_at);
      if (!WriteReply(sock, reply, req.version(), req.keep_alive())) break;
      if (!req.keep_alive()) break;
    }
    beast::error_code ec;
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
  }

  static json Event(const std::string& type, const json& obj) {
    return json{{"type", type}, {"object", obj}};
  }

  void ServeWatch(tcp::socket& sock, const bhttp::request<bhttp::string_body>& req,
                  const ApiPath& p, const std::string& query) {
    const std::string rv_param = QueryParam(query, "resourceVersion");
    const bool bookmarks = QueryParam(query, "allowWatchBookmarks") == "true" ||
                           QueryParam(query, "allowWatchBookmarks") == "1";
    int64_t timeout_s = 1800;
    absl::SimpleAtoi(QueryParam(query, "timeoutSeconds"), &timeout_s);

    std::vector<json> initial;
    int64_t cursor = 0;
    bool gone = false;
    bool gone_as_event = false;
    uint64_t seen_bookmarks = 0, seen_closes = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      int64_t from = 0;
      if (!rv_param.empty() && rv_param != "0") {
        if (!absl::SimpleAtoi(rv_param, &from)) from = 0;
        if (from < compacted_rv_) {
          gone = true;
          gone_as_event = gone_as_event_;
        }
        cursor = from;
      } else {
        for (json& obj : Matching(p)) initial.push_back(Event("ADDED", obj));
        cursor = rv_;
      }
      seen_bookmarks = bookmark_seq_;
      seen_closes = close_seq_;
    }
    const std::string too_old =
        absl::StrCat("too old resource version: ", rv_param, " (", compacted_rv_.load(), ")");
    if (gone && !gone_as_event) {
      const Reply r = StatusReply(410, "Expired", too_old);
      Record(req, 410);
      WriteReply(sock, r, req.version(), false);
      return;
    }
    Record(req, 200);
    bhttp::response<bhttp::empty_body> res{bhttp::status::ok, req.version()};
    res.set(bhttp::field::content_type, "application/json");
    res.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> sr{res};
    beast::error_code ec;
    bhttp::write_header(sock, sr, ec);
    if (ec) return;
    auto send = [&](const json& ev) {
      const std::string line = ev.dump() + "\n";
      asio::write(sock, bhttp::make_chunk(asio::buffer(line)), ec);
      return !ec;
    };
    if (gone) {
      send(Event("ERROR", StatusReply(410, "Expired", too_old).body));
      asio::write(sock, bhttp::make_chunk_last(), ec);
      return;
    }
    for (const json& ev : initial) {
      if (!send(ev)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++open_watches_;
      ++total_watches_;
    }
    watch_cv_.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      std::vector<json> out;
      bool end = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_until(lock, deadline, [&] {
          return stopping_ || close_seq_ != seen_closes || bookmark_seq_ != seen_bookmarks ||
                 (!history_.empty() && history_.back().rv > cursor);
        });
        for (const HistoryEntry& h : history_) {
          if (h.rv <= cursor) continue;
          if (h.resource_key != p.ResourceKey() || (!p.ns.empty() && h.ns != p.ns)) continue;
          // With a label selector, objects enter and leave the watch as their labels
          // change: as the real server does, a change into the selection is ADDED and
          // one out of it is DELETED, carrying the old object at the new version.
          const bool now = SelectorMatches(p, h.object);
          const bool before = h.type == "MODIFIED" && SelectorMatches(p, h.prev);
          if (h.type != "MODIFIED" || (now && before)) {
            if (now) out.push_back(Event(h.type, h.object));
          } else if (now) {
            out.push_back(Event("ADDED", h.object));
          } else if (before) {
            json old = h.prev;
            old["metadata"]["resourceVersion"] = std::to_string(h.rv);
            out.push_back(Event("DELETED", old));
          }
        }
        if (!history_.empty()) cursor = std::max(cursor, history_.back().rv);
        if (bookmark_seq_ != seen_bookmarks) {
          seen_bookmarks = bookmark_seq_;
          if (bookmarks) {
            out.push_back(
                Event("BOOKMARK", {{"kind", KindOf(p.resource)},
                                   {"apiVersion", ApiVersionOf(p.group_version)},
                                   {"metadata", {{"resourceVersion", std::to_string(rv_)}}}}));
          }
        }
        end =
            stopping_ || close_seq_ != seen_closes || std::chrono::steady_clock::now() >= deadline;
      }
      bool ok = true;
      for (const json& ev : out) {
        if (!(ok = send(ev))) break;
      }
      if (!ok || end) break;
    }
    asio::write(sock, bhttp::make_chunk_last(), ec);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --open_watches_;
    }
    watch_cv_.notify_all();
  }

  // --- State. Everything below is guarded by mu_.
  mutable std::mutex mu_;
  std::condition_variable cv_;                // changes, bookmarks, closes, stop
  mutable std::condition_variable watch_cv_;  // open_watches_ changes
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::vector<std::thread> conn_threads_;
  std::set<std::shared_ptr<tcp::socket>> sockets_;
  bool stopping_ = false;

  // resource key -> (namespace, name) -> object
  std::map<std::string, std::map<std::pair<std::string, std::string>, json>> store_;
  int64_t rv_ = 1000;
  std::atomic<int64_t> compacted_rv_{0};
  bool gone_as_event_ = false;
  std::vector<HistoryEntry> history_;
  uint64_t bookmark_seq_ = 0;
  uint64_t close_seq_ = 0;
  int open_watches_ = 0;
  int total_watches_ = 0;
  int64_t uid_seq_ = 0;
  int64_t name_seq_ = 0;
  std::deque<Fault> faults_;
  std::string required_token_;
  std::vector<RequestRecord> requests_;
  mutable std::condition_variable request_cv_;  // a request was logged

  friend class FakeApiServer;
};

FakeApiServer::FakeApiServer() : impl_(std::make_unique<Impl>()) {}
FakeApiServer::~FakeApiServer() { impl_->Stop(); }
absl::Status FakeApiServer::Start() { return impl_->Start(); }
void FakeApiServer::Stop() { impl_->Stop(); }
uint16_t FakeApiServer::port() const { return impl_->port(); }
std::string FakeApiServer::url() const { return absl::StrCat("http://127.0.0.1:", port()); }

namespace {
absl::Status ReplyError(const Reply& r) {
  return absl::UnknownError(absl::StrCat("HTTP ", r.status, ": ", r.body.dump()));
}
}  // namespace

absl::StatusOr<std::string> FakeApiServer::Create(absl::string_view collection,
                                                  absl::string_view text) {
  auto p = ParsePath(collection);
  if (!p || !p->name.empty()) return absl::InvalidArgumentError("not a collection path");
  json obj = json::parse(text, nullptr, false);
  if (obj.is_discarded()) return absl::InvalidArgumentError("not JSON");
  std::lock_guard<std::mutex> lock(impl_->mu_);
  Reply r = impl_->CreateLocked(*p, std::move(obj));
  if (r.status >= 300) return ReplyError(r);
  return r.body.dump();
}

absl::StatusOr<std::string> FakeApiServer::Apply(absl::string_view collection,
                                                 absl::string_view text) {
  auto p = ParsePath(collection);
  if (!p || !p->name.empty()) return absl::InvalidArgumentError("not a collection path");
  json obj = json::parse(text, nullptr, false);
  if (obj.is_discarded() || !obj.is_object()) return absl::InvalidArgumentError("not JSON");
  std::lock_guard<std::mutex> lock(impl_->mu_);
  ApiPath op = *p;
  op.name = obj["metadata"].value("name", "");
  json* stored = impl_->Find(op);
  if (stored == nullptr) {
    Reply r = impl_->CreateLocked(*p, std::move(obj));
    if (r.status >= 300) return ReplyError(r);
    return r.body.dump();
  }
  // A test's Apply sets status too, so write both halves.
  json status = obj.contains("status") ? obj["status"] : json();
  Reply r = impl_->UpdateLocked(op, stored, obj, /*status_only=*/false);
  if (!status.is_null()) {
    (*stored)["status"] = status;
    r.body = *stored;
  }
  return r.body.dump();
}

absl::StatusOr<std::string> FakeApiServer::Get(absl::string_view object_path) const {
  auto p = ParsePath(object_path);
  if (!p || p->name.empty()) return absl::InvalidArgumentError("not an object path");
  std::lock_guard<std::mutex> lock(impl_->mu_);
  json* obj = impl_->Find(*p);
  if (obj == nullptr) return absl::NotFoundError(std::string(object_path));
  return obj->dump();
}

absl::Status FakeApiServer::Delete(absl::string_view object_path) {
  auto p = ParsePath(object_path);
  if (!p || p->name.empty()) return absl::InvalidArgumentError("not an object path");
  std::lock_guard<std::mutex> lock(impl_->mu_);
  Reply r = impl_->HandleLocked(*p, "DELETE", "", "");
  if (r.status >= 300) return ReplyError(r);
  return absl::OkStatus();
}

std::vector<std::string> FakeApiServer::List(absl::string_view collection) const {
  std::vector<std::string> out;
  auto p = ParsePath(collection);
  if (!p) return out;
  std::lock_guard<std::mutex> lock(impl_->mu_);
  for (const json& obj : impl_->Matching(*p)) out.push_back(obj.dump());
  return out;
}

absl::StatusOr<std::string> FakeApiServer::CreateWorkload(absl::string_view ns,
                                                          absl::string_view kind,
                                                          absl::string_view name,
                                                          int32_t replicas) {
  const std::string plural = kind == "StatefulSet" ? "statefulsets" : "deployments";
  json obj = {
      {"metadata", {{"name", std::string(name)}}},
      {"spec",
       {{"replicas", replicas}, {"selector", {{"matchLabels", {{"app", std::string(name)}}}}}}},
      {"status", {{"replicas", replicas}}}};
  return Apply(absl::StrCat("/apis/apps/v1/namespaces/", ns, "/", plural), obj.dump());
}

int64_t FakeApiServer::resource_version() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->rv_;
}

void FakeApiServer::SendBookmarks() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    ++impl_->bookmark_seq_;
  }
  impl_->cv_.notify_all();
}

void FakeApiServer::Compact() {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->compacted_rv_ = impl_->rv_;
}

void FakeApiServer::SetGoneAsErrorEvent(bool as_event) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->gone_as_event_ = as_event;
}

void FakeApiServer::CloseWatches() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu_);
    ++impl_->close_seq_;
  }
  impl_->cv_.notify_all();
}

int FakeApiServer::open_watches() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->open_watches_;
}

bool FakeApiServer::WaitForWatches(int n, absl::Duration timeout, bool total) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->watch_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    return (total ? impl_->total_watches_ : impl_->open_watches_) >= n;
  });
}

void FakeApiServer::FailNext(int count, int status, int retry_after_seconds,
                             std::string path_substring) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->faults_.push_back({count, status, retry_after_seconds, std::move(path_substring)});
}

void FakeApiServer::RequireToken(std::string token) {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  impl_->required_token_ = std::move(token);
}

std::vector<FakeApiServer::RequestRecord> FakeApiServer::requests() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->requests_;
}

int FakeApiServer::CountRequests(absl::string_view method,
                                 absl::string_view target_substring) const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  int n = 0;
  for (const RequestRecord& r : impl_->requests_) {
    if ((method.empty() || r.method == method) && absl::StrContains(r.target, target_substring)) {
      ++n;
    }
  }
  return n;
}

std::optional<FakeApiServer::RequestRecord> FakeApiServer::WaitForRequest(
    absl::string_view method, absl::string_view target_substring, absl::Duration timeout,
    size_t from) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  std::optional<RequestRecord> found;
  size_t next = from;
  impl_->request_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    for (; next < impl_->requests_.size(); ++next) {
      const RequestRecord& r = impl_->requests_[next];
      if (r.method == method && r.status >= 200 && r.status < 300 &&
          absl::StrContains(r.target, target_substring)) {
        found = r;
        return true;
      }
    }
    return false;
  });
  return found;
}

bool FakeApiServer::WaitForRequestsBeyond(size_t count, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(impl_->mu_);
  return impl_->request_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                     [&] { return impl_->requests_.size() > count; });
}

size_t FakeApiServer::request_count() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->requests_.size();
}

}  // namespace zeroscale::testing

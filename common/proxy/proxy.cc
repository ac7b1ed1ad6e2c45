#include "common/proxy/proxy.h"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/http/head_checks.h"
#include "common/log/log.h"
#include "common/time/clock.h"

namespace zeroscale::proxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

// Bump allocation for one message's header fields from a block the session reuses:
// Beast allocates every field (and the start line) separately and frees them all with
// the message, some ten malloc/free pairs per proxied request. Reset once the message
// is gone; what does not fit comes from the heap.
class Arena {
 public:
  void* Allocate(size_t n, size_t align) {
    const size_t at = (used_ + align - 1) & ~(align - 1);
    if (at + n <= sizeof(block_)) {
      used_ = at + n;
      return block_ + at;
    }
    return ::operator new(n);
  }
  void Deallocate(void* p) {
    if (p < static_cast<void*>(block_) || p >= static_cast<void*>(block_ + sizeof(block_))) {
      ::operator delete(p);
    }
  }
  void Reset() { used_ = 0; }

 private:
  alignas(std::max_align_t) char block_[4096];
  size_t used_ = 0;
};

template <class T>
class ArenaAllocator {
 public:
  using value_type = T;
  explicit ArenaAllocator(Arena* arena) noexcept : arena_(arena) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) noexcept : arena_(other.arena()) {}
  T* allocate(size_t n) { return static_cast<T*>(arena_->Allocate(n * sizeof(T), alignof(T))); }
  void deallocate(T* p, size_t) noexcept { arena_->Deallocate(p); }
  Arena* arena() const { return arena_; }
  template <class U>
  bool operator==(const ArenaAllocator<U>& other) const {
    return arena_ == other.arena();
  }
  template <class U>
  bool operator!=(const ArenaAllocator<U>& other) const {
    return arena_ != other.arena();
  }

 private:
  Arena* arena_;
};

using Fields = bhttp::basic_fields<ArenaAllocator<char>>;
using RequestParser = bhttp::request_parser<bhttp::buffer_body, ArenaAllocator<char>>;
using ResponseParser = bhttp::response_parser<bhttp::buffer_body, ArenaAllocator<char>>;

// Constructs p's message with its fields in arena, after emptying the arena (p must be
// empty: its old message gave back what it held).
template <class Parser>
void EmplaceParser(std::optional<Parser>& p, Arena& arena) {
  p.reset();
  arena.Reset();
  p.emplace(std::piecewise_construct, std::make_tuple(),
            std::make_tuple(ArenaAllocator<char>(&arena)));
}

}  // namespace

// ---------------------------------------------------------------------------------
// Plain types.

absl::string_view RequestHead::Header(absl::string_view name) const {
  if (fields == nullptr) return {};
  const auto& f = *static_cast<const Fields*>(fields);
  auto it = f.find(beast::string_view(name.data(), name.size()));
  if (it == f.end()) return {};
  return absl::string_view(it->value().data(), it->value().size());
}

void RequestHead::ForEachHeader(
    const std::function<void(absl::string_view, absl::string_view)>& fn) const {
  if (fields == nullptr) return;
  for (const auto& h : *static_cast<const Fields*>(fields)) {
    fn(absl::string_view(h.name_string().data(), h.name_string().size()),
       absl::string_view(h.value().data(), h.value().size()));
  }
}

std::string Upstream::ToString() const {
  if (host.find(':') != std::string::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

PickResult PickResult::Forward(Upstream upstream) {
  PickResult r;
  r.upstream = std::move(upstream);
  return r;
}

PickResult PickResult::Reject(int status, std::string body,
                              std::vector<std::pair<std::string, std::string>> headers) {
  PickResult r;
  r.error_status = status;
  r.error_body = std::move(body);
  r.error_headers = std::move(headers);
  return r;
}

PickDone& PickDone::operator=(PickDone&& other) noexcept {
  if (this != &other) {
    if (sink_) (*this)(PickResult::Reject(502, "no upstream was chosen\n"));
    sink_ = std::move(other.sink_);
  }
  return *this;
}

PickDone::~PickDone() {
  if (sink_) (*this)(PickResult::Reject(502, "no upstream was chosen\n"));
}

void PickDone::operator()(PickResult result) {
  if (!sink_) return;
  std::shared_ptr<internal::PickSink> sink = std::move(sink_);
  sink->DeliverPick(std::move(result));
}

void FixedUpstreamPicker::Pick(const RequestHead&, PickDone done) {
  done(PickResult::Forward(upstream_));
}

absl::string_view OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kRejected:
      return "rejected";
    case Outcome::kBadGateway:
      return "bad_gateway";
    case Outcome::kGatewayTimeout:
      return "gateway_timeout";
    case Outcome::kClientGone:
      return "client_gone";
    case Outcome::kBadRequest:
      return "bad_request";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------
// Engine.

namespace {

SteadyClock::duration ToSteady(absl::Duration d) {
  return std::chrono::duration_cast<SteadyClock::duration>(absl::ToChronoNanoseconds(d));
}

struct Counters {
  std::atomic<uint64_t> requests{0}, in_flight{0}, accepted{0}, connects{0}, reuses{0}, retries{0},
      rejected{0}, bad_gateway{0}, gateway_timeout{0}, client_gone{0}, bad_request{0};
};

// An upstream connection. Shared so that a pending operation keeps its socket and
// buffer alive after the session gave up on it.
struct UpConn {
  explicit UpConn(asio::io_context& ioc) : socket(ioc) {}
  tcp::socket socket;
  beast::flat_buffer buffer;
  SteadyClock::time_point idle_since;
};

// How long a pooled connection may have been idle and still be reused without the
// StillUsable peek.
constexpr auto kTrustIdleUpTo = std::chrono::milliseconds(3);

// True when an idle pooled connection has neither been closed by the upstream nor
// received stray bytes; one non-blocking peek instead of a read kept pending per
// idle connection.
bool StillUsable(tcp::socket& s) {
  char b;
  const ssize_t n = ::recv(s.native_handle(), &b, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Removes hop-by-hop headers (RFC 7230 6.1), including those Connection names. One pass
// over the fields: a lookup per hop-by-hop name costs a tree search each, per request.
// Returns the first X-Forwarded-For value, found on the way for the same reason.
template <class F>
std::optional<absl::string_view> StripHopByHop(F& f) {
  std::string listed;
  std::optional<absl::string_view> xff;
  for (auto it = f.begin(); it != f.end();) {
    switch (it->name()) {
      case bhttp::field::connection:
        if (!listed.empty()) listed += ',';
        listed.append(it->value().data(), it->value().size());
        it = f.erase(it);
        continue;
      case bhttp::field::keep_alive:
      case bhttp::field::te:
      case bhttp::field::trailer:
      case bhttp::field::upgrade:
      case bhttp::field::transfer_encoding:
      case bhttp::field::proxy_connection:
        it = f.erase(it);
        continue;
      case bhttp::field::unknown:
        if (!xff && beast::iequals(it->name_string(), "X-Forwarded-For")) {
          xff = absl::string_view(it->value().data(), it->value().size());
        }
        ++it;
        continue;
      default:
        ++it;
    }
  }
  for (auto token : bhttp::token_list(listed)) {
    // Connection options rather than field names (a Keep-Alive field went above).
    if (beast::iequals(token, "keep-alive") || beast::iequals(token, "close")) continue;
    if (beast::iequals(token, "X-Forwarded-For")) xff.reset();
    f.erase(token);
  }
  return xff;
}

// Parses what is already buffered, one element at a time, without touching the socket.
// Beast's read_some with an eager parser keeps reading while the parser wants more,
// which would hold back a streamed piece until the next one arrives; so parsers stay
// non-eager and this picks up the rest of a segment (e.g. the body after a header).
template <class Parser>
void ParseBuffered(Parser& p, beast::flat_buffer& b, beast::error_code& ec) {
  while (!p.is_done() && b.size() > 0 && p.get().body().size > 0) {
    const size_t used = p.put(b.data(), ec);
    b.consume(used);
    if (ec == bhttp::error::need_more) ec = {};
    if (ec || used == 0) return;
  }
}

// The bytes of one write, gathered into as few buffers as possible. Beast's serializer
// hands out header and chunk framing as nested buffer sequences whose generic iteration
// (in Beast, then again in every asio send attempt) cost more than the rest of a small
// request's relay. So the header comes from Beast's header writer (what the serializer
// uses) and the chunk framing from Beast's chunk encoders, walked once: small pieces are
// copied into one reused flat buffer, and only large body pieces are referenced (they
// live in the session's body buffers until the write completes).
class WriteBatch {
 public:
  void Clear() {
    flat_size_ = 0;
    pieces_.clear();
    bufs_.clear();
    size_ = 0;
  }

  template <class Body, class F>
  void AppendHeader(const bhttp::request<Body, F>& msg) {
    AppendAll(typename F::writer(msg.base(), msg.version(), msg.method()).get());
  }
  template <class Body, class F>
  void AppendHeader(const bhttp::response<Body, F>& msg) {
    AppendAll(typename F::writer(msg.base(), msg.version(), msg.result_int()).get());
  }

  // One piece of a body; `last` ends it (for a chunked body, with the last chunk).
  void AppendBody(const char* data, size_t n, bool last, bool chunked) {
    if (!chunked) return Append(data, n);
    if (n > 0) AppendAll(bhttp::make_chunk(asio::const_buffer(data, n)));
    if (last) AppendAll(bhttp::make_chunk_last());
  }

  // Resolves the pieces into buffers once flat_ no longer moves.
  void Seal() {
    for (const Piece& p : pieces_) {
      bufs_.emplace_back(p.data != nullptr ? p.data : flat_.get() + p.offset, p.size);
    }
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const std::vector<asio::const_buffer>& buffers() const { return bufs_; }

  // Drops the first n bytes (a partial non-blocking write).
  void Consume(size_t n) {
    size_ -= n;
    size_t i = 0;
    while (i < bufs_.size() && n >= bufs_[i].size()) n -= bufs_[i++].size();
    bufs_.erase(bufs_.begin(), bufs_.begin() + static_cast<std::ptrdiff_t>(i));
    if (n > 0) bufs_.front() += n;
  }

 private:
  static constexpr size_t kReferenceAtLeast = 2048;

  struct Piece {
    const char* data;  // null: in flat_ from offset
    size_t offset;
    size_t size;
  };

  template <class Buffers>
  void AppendAll(const Buffers& buffers) {
    for (const asio::const_buffer b : beast::buffers_range_ref(buffers)) {
      Append(static_cast<const char*>(b.data()), b.size());
    }
  }

  void Append(const char* data, size_t n) {
    if (n == 0) return;
    size_ += n;
    if (n >= kReferenceAtLeast) {
      pieces_.push_back({data, 0, n});
      return;
    }
    if (pieces_.empty() || pieces_.back().data != nullptr) {
      pieces_.push_back({nullptr, flat_size_, 0});
    }
    if (flat_size_ + n > flat_capacity_) Grow(flat_size_ + n);
    std::memcpy(flat_.get() + flat_size_, data, n);
    flat_size_ += n;
    pieces_.back().size += n;
  }

  void Grow(size_t at_least) {
    const size_t capacity = std::max<size_t>({at_least, 2 * flat_capacity_, 1024});
    std::unique_ptr<char[]> bigger(new char[capacity]);
    if (flat_size_ > 0) std::memcpy(bigger.get(), flat_.get(), flat_size_);
    flat_ = std::move(bigger);
    flat_capacity_ = capacity;
  }

  std::unique_ptr<char[]> flat_;
  size_t flat_size_ = 0;
  size_t flat_capacity_ = 0;
  std::vector<Piece> pieces_;
  std::vector<asio::const_buffer> bufs_;
  size_t size_ = 0;
};

// Writes as much of batch as the socket takes now, without blocking. Returns true when
// all of it went out (or ec is set); false leaves the rest in batch for an async write.
bool TrySend(tcp::socket& s, WriteBatch& batch, beast::error_code& ec) {
  while (!batch.empty()) {
    const size_t n = s.write_some(batch.buffers(), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      return false;
    }
    if (ec) return true;
    batch.Consume(n);
  }
  return true;
}

// Bytes to ask the socket for: the room the buffer already has, within bounds.
size_t ReadSize(const beast::flat_buffer& b, size_t at_least) {
  return std::clamp<size_t>(b.capacity() - b.size(), at_least, 64 << 10);
}

// Maps the end of the stream as Beast's read_some does: the end of a close-delimited
// message, a message cut short (partial_message), or none at all (end_of_stream).
template <class Parser>
void MapEof(Parser& p, beast::error_code& ec) {
  if (ec != asio::error::eof) return;
  if (!p.got_some()) {
    ec = bhttp::error::end_of_stream;
    return;
  }
  ec = {};
  p.put_eof(ec);
}

class Session;

struct ProxyShared {
  explicit ProxyShared(const ProxyOptions& o)
      : options(o), accept(o.name, Limits(o), RealClock::Get(), o.observer) {}
  static net::ListenerLimits Limits(const ProxyOptions& o) {
    net::ListenerLimits limits;
    limits.max_connections = o.max_connections;
    return limits;
  }
  ProxyOptions options;
  UpstreamPicker* picker = nullptr;
  ProxyObserver* observer = nullptr;
  net::AcceptControl accept;  // shared by the workers' acceptors
  Counters counters;
  std::atomic<uint64_t> next_id{1};
  SteadyClock::duration connect_timeout, upstream_timeout, client_timeout, idle_timeout,
      pool_timeout;
};

struct Worker {
  explicit Worker(ProxyShared& s) : shared(s) {}
  ProxyShared& shared;
  Session* sessions = nullptr;  // intrusive list, for the deadline sweep
  // One thread runs it, and only that thread touches its sockets and timers, so the
  // reactor's per-socket locking is dropped; the scheduler keeps its lock because picks
  // may be delivered from other threads.
  asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> ticker;
  std::optional<asio::steady_timer> accept_retry;  // backoff after a failed accept
  std::map<tcp::endpoint, std::vector<std::shared_ptr<UpConn>>> idle;
  std::thread thread;
};

enum class Phase {
  kIdle,     // waiting for a request header
  kPicking,  // waiting for the picker
  kConnecting,
  kSending,    // relaying the request (upstream write or client body read)
  kReceiving,  // relaying the response
  kReplying,   // writing a generated error response
  kClosed,
};

class Session : public internal::PickSink, public std::enable_shared_from_this<Session> {
 public:
  Session(Worker& w, tcp::socket socket, net::ConnectionSlot slot)
      : w_(w),
        sh_(w.shared),
        slot_(std::move(slot)),
        client_(std::move(socket)),
        req_buf_(new char[sh_.options.body_buffer_bytes]),
        res_buf_(new char[sh_.options.body_buffer_bytes]) {
    next_ = w_.sessions;
    if (next_) next_->prev_ = this;
    w_.sessions = this;
    beast::error_code ec;
    client_.set_option(tcp::no_delay(true), ec);
    client_.non_blocking(true, ec);  // for TrySend
    const tcp::endpoint remote = client_.remote_endpoint(ec);
    if (!ec) head_.client_ip = remote.address().to_string();
  }

  ~Session() override {
    if (prev_) prev_->next_ = next_;
    if (next_) next_->prev_ = prev_;
    if (w_.sessions == this) w_.sessions = next_;
  }

  void Start() { ReadRequest(); }

  Session* next() const { return next_; }

  // Called each timer tick. The client is watched for leaving only once the upstream has
  // taken longer than a tick: arming the watch on every request costs a syscall and a
  // handler each, while most responses come back well within one tick.
  void OnTick() {
    if (phase_ == Phase::kReceiving && req_sent_) StartEarlyRead();
  }
  bool Expired(SteadyClock::time_point now) const { return now >= deadline_; }

  void DeliverPick(PickResult result) override {
    // The usual case: the picker answered inline, on this worker's thread.
    if (w_.ioc.get_executor().running_in_this_thread()) return OnPicked(std::move(result));
    asio::post(w_.ioc, [self = shared_from_this(), r = std::move(result)]() mutable {
      self->OnPicked(std::move(r));
    });
  }

  void OnTimeout() {
    deadline_ = SteadyClock::time_point::max();
    switch (phase_) {
      case Phase::kIdle:
      case Phase::kReplying:
      case Phase::kClosed:
        return CloseAll();
      case Phase::kPicking:
        return;  // the picker owns hold timeouts
      case Phase::kConnecting:
        return UpstreamFailed(Outcome::kGatewayTimeout, "upstream connect timed out");
      case Phase::kSending:
      case Phase::kReceiving:
        if (waiting_on_client_) {
          sh_.counters.client_gone++;
          return Abort(Outcome::kClientGone);
        }
        return UpstreamFailed(Outcome::kGatewayTimeout, "upstream timed out");
    }
  }

 private:
  // ---- request header ----------------------------------------------------------

  void ReadRequest() {
    phase_ = Phase::kIdle;
    head_status_ = 0;
    repeated_content_length_ = false;
    finished_ = true;
    early_done_ = false;
    header_seen_ = false;
    req_sent_ = false;
    res_.reset();
    EmplaceParser(req_, req_arena_);
    req_->header_limit(static_cast<uint32_t>(sh_.options.max_header_bytes));
    // Not boost::none: Beast 1.74 then rejects every Content-Length body.
    req_->body_limit(std::numeric_limits<std::uint64_t>::max());
    SetDeadline(sh_.idle_timeout);
    ReadClient(true);
  }

  // Reads more of the request and parses it with Beast's parser: a plain socket read
  // rather than Beast's composed read_some, whose work guards and nested handler cost
  // more per request than the parse. With parse_buffered, bytes already in cbuf_ (a
  // pipelined request, body beyond the last piece) are parsed before reading, as
  // read_some does; otherwise what is buffered is known to need more.
  void ReadClient(bool parse_buffered) {
    auto& body = req_->get().body();
    body.data = req_buf_.get();
    body.size = sh_.options.body_buffer_bytes;
    waiting_on_client_ = true;
    if (parse_buffered && cbuf_.size() > 0) {
      asio::post(w_.ioc, [self = shared_from_this()] { self->OnClientRead({}); });
      return;
    }
    client_.async_read_some(cbuf_.prepare(ReadSize(cbuf_, 4096)),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              self->cbuf_.commit(n);
                              self->OnClientRead(ec);
                            });
  }

  void OnClientRead(beast::error_code ec) {
    if (phase_ == Phase::kClosed || phase_ == Phase::kReplying) return;
    waiting_on_client_ = false;
    MapEof(*req_, ec);
    if (!ec && !header_seen_ && !req_->is_header_done()) ParseHead(ec);
    if (!ec) ParseBuffered(*req_, cbuf_, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      if (!header_seen_) {
        if (req_->got_some() && ec != bhttp::error::end_of_stream &&
            ec != asio::error::connection_reset && ec != asio::error::operation_aborted) {
          const int status = ec == bhttp::error::header_limit ? 431 : 400;
          sh_.counters.bad_request.fetch_add(1, std::memory_order_relaxed);
          return ReplyAndClose(status, absl::StrCat("bad request: ", ec.message(), "\n"));
        }
        return CloseAll();
      }
      // Mid-body: the client left or sent a malformed body.
      const bool gone = ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
                        ec == asio::error::connection_reset || ec == asio::error::eof;
      if (gone) sh_.counters.client_gone++;
      return Abort(gone ? Outcome::kClientGone : Outcome::kBadRequest);
    }
    if (!header_seen_) {
      if (!req_->is_header_done()) return ReadClient(false);
      if (head_status_ != 0) {
        sh_.counters.bad_request.fetch_add(1, std::memory_order_relaxed);
        return ReplyAndClose(head_status_, absl::StrCat("bad request: ", head_error_, "\n"));
      }
      return OnRequestHeader();
    }
    // More request body for the upstream.
    auto& body = req_->get().body();
    const size_t n = sh_.options.body_buffer_bytes - body.size;
    if (n == 0 && !req_->is_done()) return ReadClient(false);
    req_body_bytes_ += n;
    up_out_.Clear();
    up_out_.AppendBody(req_buf_.get(), n, req_->is_done(), req_chunked_);
    WriteUpstream();
  }

  // Parses the request head from what is buffered (Beast's parser, not eager, takes the
  // head alone once all of it is there) and checks it while its bytes are still at hand:
  // head_status_ is then the answer to refuse it with, or 0.
  void ParseHead(beast::error_code& ec) {
    if (cbuf_.size() == 0) return;
    const char* head = static_cast<const char*>(cbuf_.data().data());
    const size_t used = req_->put(cbuf_.data(), ec);
    if (ec == bhttp::error::need_more) ec = {};
    if (!ec && req_->is_header_done()) {
      const auto& msg = req_->get();
      http::RequestHeadCheck check(msg.version());
      for (const auto& f : msg) {
        check.Field(absl::string_view(f.name_string().data(), f.name_string().size()),
                    absl::string_view(f.value().data(), f.value().size()));
      }
      head_status_ = check.Verdict(absl::string_view(head, used), &head_error_);
      repeated_content_length_ = check.repeated_content_length();
    }
    cbuf_.consume(used);
  }

  void OnRequestHeader() {
    header_seen_ = true;
    finished_ = false;
    start_ = SteadyClock::now();
    reused_ = retried_ = truncated_ = false;
    req_body_bytes_ = res_body_bytes_ = 0;
    status_ = 0;
    upstream_set_ = false;
    auto& msg = req_->get();
    head_.id = sh_.next_id.fetch_add(1, std::memory_order_relaxed);
    const auto method = msg.method_string();
    head_.method.assign(method.data(), method.size());
    const auto target = msg.target();
    head_.target.assign(target.data(), target.size());
    const auto host = msg[bhttp::field::host];
    head_.host.assign(host.data(), host.size());
    head_.version = msg.version();
    head_.fields = static_cast<const Fields*>(&msg);
    is_head_ = msg.method() == bhttp::verb::head;
    client_keep_alive_ = req_->keep_alive();
    client_version_ = msg.version() == 10 ? 10 : 11;
    req_body_bytes_ = sh_.options.body_buffer_bytes - msg.body().size;
    req_whole_ = req_->is_done();

    sh_.counters.requests.fetch_add(1, std::memory_order_relaxed);
    sh_.counters.in_flight.fetch_add(1, std::memory_order_relaxed);
    if (sh_.observer) sh_.observer->OnRequestStart(head_);

    phase_ = Phase::kPicking;
    deadline_ = SteadyClock::time_point::max();
    sh_.picker->Pick(head_, PickDone(shared_from_this()));
    // A held pick may last long (a workload waking), so the client is watched from now;
    // a pick answered at once (dispatched inline) has already moved the phase on.
    if (phase_ == Phase::kPicking && req_->is_done()) StartEarlyRead();
  }

  // Rewrites the request header in place for the upstream; called once per attempt-free
  // request, after the pick (the picker saw the header as sent).
  void PrepareUpstreamRequest() {
    auto& msg = req_->get();
    const bool chunked = req_->chunked();
    head_.fields = nullptr;  // the fields change from here on
    const auto expect = msg.find(bhttp::field::expect);
    if (expect != msg.end() && beast::iequals(expect->value(), "100-continue")) {
      // We answer 100 Continue ourselves, so the upstream must not wait for it either.
      msg.erase(bhttp::field::expect);
      expect_continue_pending_ = !req_->is_done();
    }
    if (repeated_content_length_) {
      // "5, 5" or the field twice (equal, or Beast would have refused it): one value.
      const auto length = req_->content_length();  // the header's value
      msg.erase(bhttp::field::content_length);
      if (length) msg.content_length(*length);
    }
    const std::optional<absl::string_view> xff = StripHopByHop(msg);
    if (sh_.options.add_x_forwarded_for && !head_.client_ip.empty()) {
      if (!xff) {
        msg.insert("X-Forwarded-For", head_.client_ip);
      } else {
        msg.set("X-Forwarded-For", absl::StrCat(*xff, ", ", head_.client_ip));
      }
    }
    msg.version(11);
    if (chunked) msg.chunked(true);
    req_chunked_ = chunked;
  }

  // Watches the client while it owes us nothing: a read that completes with EOF means it
  // went away (and the upstream's work can be abandoned); one that brings bytes brought
  // the next pipelined request, kept for later.
  void StartEarlyRead() {
    if (early_pending_ || early_done_) return;
    early_pending_ = true;
    client_.async_read_some(
        cbuf_.prepare(4096),
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnEarlyRead(ec, n); });
  }

  void OnEarlyRead(beast::error_code ec, size_t n) {
    early_pending_ = false;
    early_done_ = true;
    if (!ec) {
      cbuf_.commit(n);
      if (want_next_) {
        want_next_ = false;
        ReadRequest();
      }
      return;
    }
    if (phase_ == Phase::kClosed) return;
    if (want_next_ || finished_) return CloseAll();  // closed between requests
    if (phase_ == Phase::kReplying) return;
    sh_.counters.client_gone++;
    Abort(Outcome::kClientGone);
  }

  // ---- pick and connect --------------------------------------------------------

  void OnPicked(PickResult r) {
    if (phase_ != Phase::kPicking) return;  // client gone meanwhile
    if (!r.ok()) {
      sh_.counters.rejected++;
      return Reply(r.error_status, std::move(r.error_body), &r.error_headers, Outcome::kRejected,
                   /*allow_keep_alive=*/true);
    }
    // The endpoint is kept across requests: most picks name the previous upstream again.
    if (!up_ep_valid_ || r.upstream.host != upstream_.host || r.upstream.port != upstream_.port) {
      up_ep_valid_ = false;
      beast::error_code ec;
      auto addr = asio::ip::make_address(
          r.upstream.host == "localhost" ? std::string("127.0.0.1") : r.upstream.host, ec);
      upstream_ = std::move(r.upstream);
      if (ec) {
        upstream_set_ = false;
        sh_.counters.bad_gateway++;
        return Reply(502, absl::StrCat("bad upstream address ", upstream_.ToString(), "\n"),
                     nullptr, Outcome::kBadGateway, true);
      }
      up_ep_ = tcp::endpoint(addr, upstream_.port);
      up_ep_valid_ = true;
    }
    upstream_set_ = true;
    upstream_timeout_ = r.upstream_timeout > absl::ZeroDuration() ? ToSteady(r.upstream_timeout)
                                                                  : sh_.upstream_timeout;
    PrepareUpstreamRequest();
    if (expect_continue_pending_) {
      expect_continue_pending_ = false;
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(client_, asio::buffer(kContinue, sizeof(kContinue) - 1),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (self->phase_ != Phase::kPicking) return;
                          if (ec) {
                            self->sh_.counters.client_gone++;
                            return self->Abort(Outcome::kClientGone);
                          }
                          self->GetConnection(true);
                        });
      return;
    }
    GetConnection(true);
  }

  void GetConnection(bool allow_pooled) {
    if (allow_pooled) {
      auto it = w_.idle.find(up_ep_);
      if (it != w_.idle.end()) {
        auto& pool = it->second;
        const auto now = SteadyClock::now();
        while (!pool.empty()) {
          std::shared_ptr<UpConn> c = std::move(pool.back());
          pool.pop_back();
          const auto idle = now - c->idle_since;
          // A connection idle only briefly is taken on trust when the request can be resent
          // (see UpstreamIoFailed): the peek would cost a syscall on nearly every request
          // under load, to catch a close that almost never comes that soon.
          const bool trusted = idle < kTrustIdleUpTo && req_whole_;
          if (idle < sh_.pool_timeout && (trusted || StillUsable(c->socket))) {
            up_ = std::move(c);
            reused_ = true;
            sh_.counters.reuses.fetch_add(1, std::memory_order_relaxed);
            return SendRequest();
          }
          beast::error_code ignored;
          c->socket.close(ignored);
        }
      }
    }
    reused_ = false;
    up_ = std::make_shared<UpConn>(w_.ioc);
    phase_ = Phase::kConnecting;
    SetDeadline(sh_.connect_timeout);
    sh_.counters.connects.fetch_add(1, std::memory_order_relaxed);
    up_->socket.async_connect(up_ep_, [self = shared_from_this(), c = up_](beast::error_code ec) {
      self->OnConnect(c.get(), ec);
    });
  }

  void OnConnect(UpConn* c, beast::error_code ec) {
    if (phase_ != Phase::kConnecting || c != up_.get()) return;
    if (ec) {
      return UpstreamFailed(Outcome::kBadGateway,
                            absl::StrCat("upstream ", upstream_.ToString(), ": ", ec.message()));
    }
    up_->socket.set_option(tcp::no_delay(true), ec);
    up_->socket.non_blocking(true, ec);  // for TrySend
    SendRequest();
  }

  // ---- request relay -----------------------------------------------------------

  void SendRequest() {
    phase_ = Phase::kSending;
    req_sent_ = false;
    up_out_.Clear();
    up_out_.AppendHeader(req_->get());
    // The body bytes parsed with the header (all of it when req_whole_).
    up_out_.AppendBody(req_buf_.get(), req_body_bytes_, req_->is_done(), req_chunked_);
    WriteUpstream();
  }

  // Sends up_out_; the whole request is out once it held the end of the body.
  void WriteUpstream() {
    waiting_on_client_ = false;
    SetDeadline(upstream_timeout_);
    req_sent_ = req_->is_done();
    up_out_.Seal();
    beast::error_code ec;
    if (TrySend(up_->socket, up_out_, ec)) return OnUpstreamWrite(up_.get(), ec);
    asio::async_write(up_->socket, up_out_.buffers(),
                      [self = shared_from_this(), c = up_](beast::error_code ec, size_t) {
                        self->OnUpstreamWrite(c.get(), ec);
                      });
  }

  void OnUpstreamWrite(UpConn* c, beast::error_code ec) {
    if (phase_ != Phase::kSending || c != up_.get()) return;
    if (ec) return UpstreamIoFailed(ec);
    if (req_sent_) return ReadResponse();
    SetDeadline(sh_.client_timeout);
    ReadClient(true);
  }

  // A reused connection that fails before the upstream said anything most likely was
  // closed by the upstream while idle: resend once on a fresh one when the request is
  // still whole in memory.
  void UpstreamIoFailed(beast::error_code ec) {
    const bool nothing_received = !res_ || !res_->got_some();
    if (reused_ && !retried_ && nothing_received && req_whole_) {
      retried_ = true;
      sh_.counters.retries.fetch_add(1, std::memory_order_relaxed);
      beast::error_code ignored;
      up_->socket.close(ignored);
      res_.reset();
      return GetConnection(false);
    }
    UpstreamFailed(Outcome::kBadGateway,
                   absl::StrCat("upstream ", upstream_.ToString(), ": ", ec.message()));
  }

  // ---- response relay ----------------------------------------------------------

  void ReadResponse() {
    phase_ = Phase::kReceiving;
    res_header_sent_ = false;
    EmplaceParser(res_, res_arena_);
    res_->header_limit(static_cast<uint32_t>(sh_.options.max_header_bytes));
    res_->body_limit(std::numeric_limits<std::uint64_t>::max());
    if (is_head_) res_->skip(true);
    ReadUpstream(true);
  }

  // As ReadClient, for the response.
  void ReadUpstream(bool parse_buffered) {
    auto& body = res_->get().body();
    body.data = res_buf_.get();
    body.size = sh_.options.body_buffer_bytes;
    waiting_on_client_ = false;
    SetDeadline(upstream_timeout_);
    if (parse_buffered && up_->buffer.size() > 0) {
      asio::post(w_.ioc,
                 [self = shared_from_this(), c = up_] { self->OnUpstreamRead(c.get(), {}); });
      return;
    }
    up_->socket.async_read_some(
        up_->buffer.prepare(ReadSize(up_->buffer, 16 << 10)),
        [self = shared_from_this(), c = up_](beast::error_code ec, size_t n) {
          c->buffer.commit(n);
          self->OnUpstreamRead(c.get(), ec);
        });
  }

  void OnUpstreamRead(UpConn* c, beast::error_code ec) {
    if (phase_ != Phase::kReceiving || c != up_.get()) return;
    MapEof(*res_, ec);
    if (!ec) ParseBuffered(*res_, up_->buffer, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) {
      if (!res_header_sent_) return UpstreamIoFailed(ec);
      truncated_ = true;
      sh_.counters.bad_gateway++;
      return Abort(Outcome::kBadGateway);
    }
    if (!res_->is_header_done()) return ReadUpstream(false);
    if (!res_header_sent_) {
      const unsigned code = res_->get().result_int();
      if (code / 100 == 1 && code != 101) {
        // Interim responses (103 Early Hints, a stray 100) are not relayed.
        return ReadResponse();
      }
    }
    auto& body = res_->get().body();
    const size_t n = sh_.options.body_buffer_bytes - body.size;
    if (!res_header_sent_) PrepareClientResponse(n);
    if (res_header_sent_ && n == 0 && !res_->is_done()) return ReadUpstream(false);
    res_body_bytes_ += n;
    client_out_.Clear();
    if (!res_header_sent_) client_out_.AppendHeader(res_->get());
    res_last_ = res_->is_done();
    client_out_.AppendBody(res_buf_.get(), n, res_last_, res_chunked_);
    client_out_.Seal();
    res_header_sent_ = true;
    waiting_on_client_ = true;
    SetDeadline(sh_.client_timeout);
    beast::error_code wec;
    if (TrySend(client_, client_out_, wec)) return OnClientWrite(wec);
    asio::async_write(
        client_, client_out_.buffers(),
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnClientWrite(ec); });
  }

  void PrepareClientResponse(size_t first_piece) {
    auto& msg = res_->get();
    status_ = static_cast<int>(msg.result_int());
    const bool bodiless = is_head_ || status_ == 204 || status_ == 304 || status_ / 100 == 1;
    const bool has_length = static_cast<bool>(res_->content_length());
    res_chunked_ = false;
    StripHopByHop(msg);
    msg.version(client_version_);
    if (!bodiless && !has_length && res_->is_done()) {
      msg.content_length(first_piece);  // a chunked body that arrived whole
    } else if (!bodiless && !has_length) {
      // Chunked or close-delimited upstream body of unknown length.
      if (client_version_ == 11) {
        msg.chunked(true);
        res_chunked_ = true;
      } else {
        client_keep_alive_ = false;
      }
    }
    // No Connection field is left, which already says keep-alive for HTTP/1.1 and close
    // for 1.0: Beast's keep_alive is called only when it has something to add.
    if (client_keep_alive_ != (client_version_ == 11)) msg.keep_alive(client_keep_alive_);
  }

  void OnClientWrite(beast::error_code ec) {
    if (phase_ != Phase::kReceiving) return;
    waiting_on_client_ = false;
    if (ec) {
      sh_.counters.client_gone++;
      return Abort(Outcome::kClientGone);
    }
    if (!res_last_) return ReadUpstream(true);
    ResponseComplete();
  }

  void ResponseComplete() {
    const bool reusable =
        res_->keep_alive() && !res_->need_eof() && req_sent_ && up_->buffer.size() == 0;
    if (reusable) {
      auto& pool = w_.idle[up_ep_];
      if (pool.size() < static_cast<size_t>(sh_.options.max_idle_per_upstream)) {
        up_->idle_since = SteadyClock::now();
        pool.push_back(std::move(up_));
      }
    }
    if (up_) {
      beast::error_code ignored;
      up_->socket.close(ignored);
      up_.reset();
    }
    Finish(Outcome::kOk);
    if (!client_keep_alive_) return CloseAll();
    NextRequest();
  }

  void NextRequest() {
    phase_ = Phase::kIdle;
    if (early_pending_) {
      want_next_ = true;
      SetDeadline(sh_.idle_timeout);
      return;
    }
    ReadRequest();
  }

  // ---- failures ----------------------------------------------------------------

  void UpstreamFailed(Outcome outcome, const std::string& why) {
    if (up_) {
      beast::error_code ignored;
      up_->socket.close(ignored);
    }
    const int status = outcome == Outcome::kGatewayTimeout ? 504 : 502;
    if (outcome == Outcome::kGatewayTimeout) {
      sh_.counters.gateway_timeout++;
    } else {
      sh_.counters.bad_gateway++;
    }
    ZS_LOG(kDebug, "upstream failed", {"upstream", upstream_.ToString()}, {"error", why});
    if (res_header_sent_ && phase_ == Phase::kReceiving) {
      truncated_ = true;
      return Abort(outcome);
    }
    // Keep the client connection only when nothing of this request is left unread and
    // no upstream operation can still be touching session state.
    const bool clean = phase_ == Phase::kConnecting && req_->is_done();
    Reply(status, status == 504 ? "upstream timed out\n" : "upstream unavailable\n", nullptr,
          outcome, clean);
  }

  void Reply(int status, std::string body,
             const std::vector<std::pair<std::string, std::string>>* headers, Outcome outcome,
             bool allow_keep_alive) {
    if (status_ == 0 || !res_header_sent_) status_ = status;
    phase_ = Phase::kReplying;
    const bool keep = allow_keep_alive && client_keep_alive_ && req_->is_done();
    err_.emplace(static_cast<bhttp::status>(status), client_version_);
    err_->set(bhttp::field::content_type, "text/plain; charset=utf-8");
    if (headers) {
      for (const auto& [k, v] : *headers) err_->set(k, v);
    }
    const size_t len = body.size();
    if (!is_head_) err_->body() = std::move(body);
    err_->content_length(len);
    err_->keep_alive(keep);
    SetDeadline(sh_.client_timeout);
    waiting_on_client_ = true;
    bhttp::async_write(client_, *err_,
                       [self = shared_from_this(), outcome, keep](beast::error_code ec, size_t) {
                         self->err_.reset();
                         self->Finish(outcome);
                         if (ec || !keep) return self->CloseAll();
                         self->NextRequest();
                       });
  }

  void ReplyAndClose(int status, std::string body) {
    client_keep_alive_ = false;
    status_ = status;
    phase_ = Phase::kReplying;
    err_.emplace(static_cast<bhttp::status>(status), 11);
    err_->set(bhttp::field::content_type, "text/plain; charset=utf-8");
    err_->body() = std::move(body);
    err_->prepare_payload();
    err_->keep_alive(false);
    SetDeadline(sh_.client_timeout);
    bhttp::async_write(client_, *err_, [self = shared_from_this()](beast::error_code, size_t) {
      self->CloseAll();
    });
  }

  // Ends the request where it stands: both connections are closed.
  void Abort(Outcome outcome) {
    if (phase_ == Phase::kPicking && sh_.picker) sh_.picker->Cancel(head_);
    if (status_ == 0) status_ = outcome == Outcome::kClientGone ? 499 : 502;
    if (outcome == Outcome::kClientGone && res_header_sent_) truncated_ = true;
    Finish(outcome);
    CloseAll();
  }

  void Finish(Outcome outcome) {
    if (finished_) return;
    finished_ = true;
    sh_.counters.in_flight.fetch_sub(1, std::memory_order_relaxed);
    if (!sh_.observer) return;
    RequestResult r;
    r.head = &head_;
    r.upstream = upstream_set_ ? &upstream_ : nullptr;
    r.status = status_;
    r.outcome = outcome;
    r.latency = absl::FromChrono(SteadyClock::now() - start_);
    r.request_body_bytes = req_body_bytes_;
    r.response_body_bytes = res_body_bytes_;
    r.reused_connection = reused_;
    r.response_truncated = truncated_;
    sh_.observer->OnRequestDone(r);
  }

  void CloseAll() {
    phase_ = Phase::kClosed;
    deadline_ = SteadyClock::time_point::max();
    beast::error_code ignored;
    if (up_) {
      up_->socket.close(ignored);
      up_.reset();
    }
    client_.shutdown(tcp::socket::shutdown_both, ignored);
    client_.close(ignored);
  }

  void SetDeadline(SteadyClock::duration d) { deadline_ = SteadyClock::now() + d; }

  Worker& w_;
  ProxyShared& sh_;
  Session* prev_ = nullptr;
  Session* next_ = nullptr;
  net::ConnectionSlot slot_;  // freed with the session, after the socket closes
  tcp::socket client_;
  beast::flat_buffer cbuf_;
  std::unique_ptr<char[]> req_buf_;
  std::unique_ptr<char[]> res_buf_;
  Arena req_arena_;  // before the parsers, which give their memory back to them
  Arena res_arena_;
  std::optional<RequestParser> req_;
  std::optional<ResponseParser> res_;
  std::optional<bhttp::response<bhttp::string_body>> err_;
  std::shared_ptr<UpConn> up_;
  WriteBatch client_out_;
  WriteBatch up_out_;
  RequestHead head_;
  Upstream upstream_;
  tcp::endpoint up_ep_;
  SteadyClock::time_point start_;
  SteadyClock::time_point deadline_ = SteadyClock::time_point::max();
  SteadyClock::duration upstream_timeout_{};  // of the current request (see PickResult)
  Phase phase_ = Phase::kIdle;
  uint64_t req_body_bytes_ = 0;
  uint64_t res_body_bytes_ = 0;
  int status_ = 0;
  int head_status_ = 0;     // non-zero: the request head is refused with this status
  std::string head_error_;  // and this reason
  bool repeated_content_length_ = false;
  unsigned client_version_ = 11;
  bool header_seen_ = false;
  bool finished_ = true;
  bool is_head_ = false;
  bool client_keep_alive_ = true;
  bool upstream_set_ = false;  // upstream_ is this request's
  bool up_ep_valid_ = false;   // up_ep_ is upstream_'s address
  bool reused_ = false;
  bool retried_ = false;
  bool truncated_ = false;
  bool res_header_sent_ = false;
  bool waiting_on_client_ = false;
  bool early_pending_ = false;
  bool early_done_ = false;
  bool want_next_ = false;
  bool expect_continue_pending_ = false;
  bool req_whole_ = false;    // the whole request arrived with its header
  bool req_chunked_ = false;  // the upstream request's body is sent chunked
  bool req_sent_ = false;     // all of the request went to the upstream
  bool res_chunked_ = false;  // the client's response body is sent chunked
  bool res_last_ = false;     // the response's end is written or being written
};

}  // namespace

class Proxy::Impl {
 public:
  Impl(ProxyOptions options, UpstreamPicker* picker, ProxyObserver* observer) : shared_(options) {
    shared_.picker = picker;
    shared_.observer = observer;
    const ProxyOptions& o = shared_.options;
    shared_.connect_timeout = ToSteady(o.connect_timeout);
    shared_.upstream_timeout = ToSteady(o.upstream_timeout);
    shared_.client_timeout = ToSteady(o.client_timeout);
    shared_.idle_timeout = ToSteady(o.client_idle_timeout);
    shared_.pool_timeout = ToSteady(o.upstream_idle_timeout);
    if (shared_.options.body_buffer_bytes < 1024) shared_.options.body_buffer_bytes = 1024;
  }

  ~Impl() { Stop(); }

  absl::Status Start() {
    const ProxyOptions& o = shared_.options;
    beast::error_code ec;
    const auto addr = asio::ip::make_address(o.listen.host, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot listen on ", o.listen.ToString(), ": bad address: ", ec.message()));
    }
    const int n = std::max(1, o.threads);
    uint16_t port = o.listen.port;
    for (int i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>(shared_);
      w->acceptor.emplace(w->ioc);
      const tcp::endpoint ep(addr, port);
      auto& a = *w->acceptor;
      a.open(ep.protocol(), ec);
      if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
      if (!ec && n > 1) {
        // Each worker accepts on its own socket; the kernel spreads connections.
        a.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true), ec);
      }
      if (!ec) a.bind(ep, ec);
      if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        workers_.clear();
        return absl::FailedPreconditionError(
            absl::StrCat("cannot listen on ", o.listen.ToString(), ": ", ec.message()));
      }
      port = a.local_endpoint().port();
      workers_.push_back(std::move(w));
    }
    port_ = port;
    for (auto& w : workers_) {
      w->accept_retry.emplace(w->ioc);
      Accept(*w);
      w->ticker.emplace(w->ioc);
      Tick(*w);
      w->thread = std::thread([wp = w.get()] { wp->ioc.run(); });
    }
    return absl::OkStatus();
  }

  void Stop() {
    if (stopped_.exchange(true)) return;
    shared_.accept.Close();
    for (auto& w : workers_) w->ioc.stop();
    for (auto& w : workers_) {
      if (w->thread.joinable()) w->thread.join();
    }
    for (auto& w : workers_) {
      w->idle.clear();
      w->ticker.reset();
      w->accept_retry.reset();
      w->acceptor.reset();
    }
    workers_.clear();
  }

  uint16_t port() const { return port_; }

  ProxyStats stats() const {
    const Counters& c = shared_.counters;
    ProxyStats s;
    s.requests = c.requests.load();
    s.in_flight = c.in_flight.load();
    s.connections_accepted = c.accepted.load();
    s.upstream_connects = c.connects.load();
    s.upstream_reuses = c.reuses.load();
    s.upstream_retries = c.retries.load();
    s.rejected = c.rejected.load();
    s.bad_gateway = c.bad_gateway.load();
    s.gateway_timeout = c.gateway_timeout.load();
    s.client_gone = c.client_gone.load();
    s.bad_request = c.bad_request.load();
    s.listener = shared_.accept.stats();
    return s;
  }

 private:
  // On w's thread.
  void Accept(Worker& w) {
    if (stopped_) return;
    const bool may = shared_.accept.MayAccept([this, &w] {
      // A connection closed (on any worker): accept again on this one.
      asio::post(w.ioc, [this, &w] { Accept(w); });
    });
    if (!may) return;  // at the cap: new connections wait in the backlog
    w.acceptor->async_accept([this, &w](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of file descriptors (or buffers): the connection stays in the backlog, and
        // accepting again at once would spin. Wait, then try again.
        w.accept_retry->expires_after(
            absl::ToChronoNanoseconds(shared_.accept.OnAcceptError(ec.message())));
        w.accept_retry->async_wait([this, &w](beast::error_code tec) {
          if (!tec) Accept(w);
        });
        return;
      }
      shared_.accept.OnAccepted();
      shared_.counters.accepted.fetch_add(1, std::memory_order_relaxed);
      std::make_shared<Session>(w, std::move(s), net::ConnectionSlot(&shared_.accept))->Start();
      Accept(w);
    });
  }

  // Checks every session's deadline and evicts stale idle upstream connections.
  void Tick(Worker& w) {
    w.ticker->expires_after(ToSteady(shared_.options.timer_tick));
    w.ticker->async_wait([this, &w](beast::error_code ec) {
      if (ec) return;
      const auto now = SteadyClock::now();
      std::vector<std::shared_ptr<Session>> expired;
      for (Session* s = w.sessions; s != nullptr; s = s->next()) {
        s->OnTick();
        if (s->Expired(now)) expired.push_back(s->shared_from_this());
      }
      for (auto& s : expired) s->OnTimeout();
      for (auto it = w.idle.begin(); it != w.idle.end();) {
        auto& pool = it->second;
        pool.erase(std::remove_if(pool.begin(), pool.end(),
                                  [&](const std::shared_ptr<UpConn>& c) {
                                    return now - c->idle_since >= shared_.pool_timeout;
                                  }),
                   pool.end());
        it = pool.empty() ? w.idle.erase(it) : std::next(it);
      }
      Tick(w);
    });
  }

  ProxyShared shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
};

Proxy::Proxy(ProxyOptions options, UpstreamPicker* picker, ProxyObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(options), picker, observer)) {}
Proxy::~Proxy() { impl_->Stop(); }
absl::Status Proxy::Start() { return impl_->Start(); }
void Proxy::Stop() { impl_->Stop(); }
uint16_t Proxy::port() const { return impl_->port(); }
ProxyStats Proxy::stats() const { return impl_->stats(); }

}  // namespace zeroscale::proxy

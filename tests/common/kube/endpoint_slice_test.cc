// EndpointSlices: the JSON mapping (as the real API server writes it, fields omitted
// included), the client's list and watch with label selectors, and the informer over
// them (events, bookmarks, 410 Gone) against the fake API server.
#include "absl/strings/str_cat.h"
#include "common/kube/client.h"
#include "common/kube/types.h"
#include "common/kube/watcher.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/kube/test_util.h"
#include "tests/testing/fake_apiserver.h"

namespace zeroscale::kube {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// A slice as kube-controller-manager writes it (trimmed of managedFields).
constexpr char kFullSlice[] = R"({
  "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
  "metadata": {
    "name": "llama-x7k2p", "namespace": "ml", "uid": "6f1c", "resourceVersion": "4711",
    "generateName": "llama-", "generation": 3,
    "labels": {"kubernetes.io/service-name": "llama",
               "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"},
    "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "llama",
                         "uid": "a1", "controller": true, "blockOwnerDeletion": true}]
  },
  "addressType": "IPv4",
  "endpoints": [
    {"addresses": ["10.1.0.7"],
     "conditions": {"ready": true, "serving": true, "terminating": false},
     "nodeName": "node-a", "zone": "z1",
     "targetRef": {"kind": "Pod", "namespace": "ml", "name": "llama-5d9f-abcde", "uid": "p1"}},
    {"addresses": ["10.1.0.8", "10.1.0.9"],
     "conditions": {"ready": false, "serving": false, "terminating": false},
     "targetRef": {"kind": "Pod", "namespace": "ml", "name": "llama-5d9f-fghij", "uid": "p2"}}
  ],
  "ports": [{"name": "http", "port": 8012, "protocol": "TCP", "appProtocol": "http"},
            {"name": "metrics", "port": 9100, "protocol": "TCP"}]
})";

TEST(EndpointSliceJsonTest, ParsesAFullObject) {
  auto slice = EndpointSliceFromJson(kFullSlice);
  ASSERT_TRUE(slice.ok()) << slice.status();
  EXPECT_EQ(slice->namespace_, "ml");
  EXPECT_EQ(slice->name, "llama-x7k2p");
  EXPECT_EQ(slice->uid, "6f1c");
  EXPECT_EQ(slice->resource_version, "4711");
  EXPECT_EQ(slice->Key(), "ml/llama-x7k2p");
  EXPECT_EQ(slice->service_name, "llama");
  EXPECT_EQ(slice->address_type, "IPv4");
  ASSERT_EQ(slice->ports.size(), 2u);
  EXPECT_EQ(slice->ports[0].name, "http");
  EXPECT_EQ(slice->ports[0].port, 8012);
  EXPECT_EQ(slice->ports[0].protocol, "TCP");
  EXPECT_EQ(slice->ports[1].name, "metrics");
  EXPECT_EQ(slice->ports[1].port, 9100);
  ASSERT_EQ(slice->endpoints.size(), 2u);
  const SliceEndpoint& a = slice->endpoints[0];
  EXPECT_THAT(a.addresses, ElementsAre("10.1.0.7"));
  EXPECT_TRUE(a.ready);
  EXPECT_TRUE(a.serving);
  EXPECT_FALSE(a.terminating);
  EXPECT_EQ(a.target_ref.kind, "Pod");
  EXPECT_EQ(a.target_ref.namespace_, "ml");
  EXPECT_EQ(a.target_ref.name, "llama-5d9f-abcde");
  EXPECT_EQ(a.target_ref.uid, "p1");
  EXPECT_EQ(a.node_name, "node-a");
  const SliceEndpoint& b = slice->endpoints[1];
  EXPECT_THAT(b.addresses, ElementsAre("10.1.0.8", "10.1.0.9"));
  EXPECT_FALSE(b.ready);
  EXPECT_FALSE(b.serving);
  EXPECT_EQ(b.target_ref.name, "llama-5d9f-fghij");
}

TEST(EndpointSliceJsonTest, OmittedFieldsReadAsTheirZeroValues) {
  // A Service without selector-matched pods: the server writes "endpoints": null, and
  // drops empty strings and unset pointers everywhere.
  auto empty = EndpointSliceFromJson(
      R"({"metadata":{"name":"s","namespace":"ml"},"addressType":"IPv4","endpoints":null})");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->service_name, "");  // no label: not owned by a Service
  EXPECT_EQ(empty->resource_version, "");
  EXPECT_THAT(empty->endpoints, IsEmpty());
  EXPECT_THAT(empty->ports, IsEmpty());

  auto sparse = EndpointSliceFromJson(R"({"metadata":{"name":"s","namespace":"ml"},
      "endpoints":[{"addresses":["10.0.0.1"]}, {"addresses":["10.0.0.2"],"conditions":{}}],
      "ports":[{}]})");
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  EXPECT_EQ(sparse->address_type, "");
  ASSERT_EQ(sparse->ports.size(), 1u);
  EXPECT_EQ(sparse->ports[0].name, "");  // the Service's one unnamed port
  EXPECT_EQ(sparse->ports[0].port, 0);   // "all ports"
  EXPECT_EQ(sparse->ports[0].protocol, "TCP");
  ASSERT_EQ(sparse->endpoints.size(), 2u);
  for (const SliceEndpoint& ep : sparse->endpoints) {
    EXPECT_TRUE(ep.target_ref.name.empty());
    EXPECT_TRUE(ep.node_name.empty());
  }
}

TEST(EndpointSliceJsonTest, AbsentConditionsReadAsTheApiSays) {
  // ready nil: "consumers should interpret this unknown state as ready"; serving nil:
  // "defer to the ready condition"; terminating nil: "not terminating".
  auto slice = EndpointSliceFromJson(R"({"metadata":{"name":"s","namespace":"ml"},
      "endpoints":[
        {"addresses":["10.0.0.1"],"conditions":{}},
        {"addresses":["10.0.0.2"],"conditions":{"ready":false}},
        {"addresses":["10.0.0.3"],"conditions":{"serving":false}}]})");
  ASSERT_TRUE(slice.ok()) << slice.status();
  const auto& eps = slice->endpoints;
  ASSERT_EQ(eps.size(), 3u);
  EXPECT_TRUE(eps[0].ready);
  EXPECT_TRUE(eps[0].serving);
  EXPECT_FALSE(eps[0].terminating);
  EXPECT_FALSE(eps[1].ready);
  EXPECT_FALSE(eps[1].serving);
  EXPECT_TRUE(eps[2].ready);
  EXPECT_FALSE(eps[2].serving);
}

TEST(EndpointSliceJsonTest, TerminatingEndpoint) {
  // A pod being deleted that still serves (graceful shutdown): not ready, serving,
  // terminating.
  auto slice = EndpointSliceFromJson(R"({"metadata":{"name":"s","namespace":"ml"},
      "endpoints":[{"addresses":["10.0.0.1"],
                    "conditions":{"ready":false,"serving":true,"terminating":true}}]})");
  ASSERT_TRUE(slice.ok()) << slice.status();
  ASSERT_EQ(slice->endpoints.size(), 1u);
  EXPECT_FALSE(slice->endpoints[0].ready);
  EXPECT_TRUE(slice->endpoints[0].serving);
  EXPECT_TRUE(slice->endpoints[0].terminating);
}

TEST(EndpointSliceJsonTest, WrongTypesNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"endpoints":[{"conditions":{"ready":"yes"}}]})", "endpoints[0].conditions.ready"},
      {R"({"endpoints":[{"addresses":["10.0.0.1"]},{"addresses":[7]}]})",
       "endpoints[1].addresses[0]"},
      {R"({"endpoints":{"addresses":[]}})", "endpoints"},
      {R"({"ports":[{"port":"http"}]})", "ports[0].port"},
      {R"({"ports":[{"port":70000}]})", "ports[0].port"},
      {R"({"metadata":{"labels":{"kubernetes.io/service-name":1}}})",
       "metadata.labels.kubernetes.io/service-name"},
  };
  for (const auto& [text, field] : cases) {
    auto slice = EndpointSliceFromJson(text);
    EXPECT_EQ(slice.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(slice.status().message(), HasSubstr(field)) << text;
  }
}

TEST(EndpointSliceJsonTest, ParsesAList) {
  auto list = EndpointSliceListFromJson(
      absl::StrCat(R"({"kind":"EndpointSliceList","metadata":{"resourceVersion":"99"},"items":[)",
                   kFullSlice, "]}"));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->resource_version, "99");
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].service_name, "llama");
}

class EndpointSliceClientTest : public FakeApiServerTest {
 protected:
  void Put(const std::string& ns, const std::string& name, const std::string& service,
           const std::vector<std::string>& addresses,
           const std::vector<std::string>& not_ready = {}) {
    ASSERT_TRUE(
        server_.Apply(EndpointSlices(ns), EndpointSliceJson(name, service, addresses, not_ready))
            .ok());
  }

  std::vector<std::string> Keys(const EndpointSliceList& list) {
    std::vector<std::string> keys;
    for (const EndpointSlice& s : list.items) keys.push_back(s.Key());
    return keys;
  }
};

TEST_F(EndpointSliceClientTest, ListsByNamespaceAndLabelSelector) {
  Put("ml", "llama-a", "llama", {"10.0.0.1"});
  Put("ml", "llama-b", "llama", {"10.0.0.2"});
  Put("ml", "mistral-a", "mistral", {"10.0.0.3"});
  Put("other", "llama-a", "llama", {"10.0.1.1"});

  auto all = client_->ListEndpointSlices("");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(Keys(*all),
              UnorderedElementsAre("ml/llama-a", "ml/llama-b", "ml/mistral-a", "other/llama-a"));
  EXPECT_EQ(all->resource_version, absl::StrCat(server_.resource_version()));

  auto llama = client_->ListEndpointSlices("ml", "kubernetes.io/service-name=llama");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_THAT(Keys(*llama), UnorderedElementsAre("ml/llama-a", "ml/llama-b"));
  EXPECT_EQ(server_.requests().back().target,
            EndpointSlices("ml") + "?labelSelector=kubernetes.io%2Fservice-name%3Dllama");
  ASSERT_EQ(llama->items[0].endpoints.size(), 1u);
  EXPECT_EQ(llama->items[0].ports[0].port, 8012);

  // Existence, inequality and several requirements at once.
  auto not_llama = client_->ListEndpointSlices("", "kubernetes.io/service-name!=llama");
  ASSERT_TRUE(not_llama.ok());
  EXPECT_THAT(Keys(*not_llama), ElementsAre("ml/mistral-a"));
  auto managed = client_->ListEndpointSlices(
      "ml", "endpointslice.kubernetes.io/managed-by,kubernetes.io/service-name==mistral");
  ASSERT_TRUE(managed.ok());
  EXPECT_THAT(Keys(*managed), ElementsAre("ml/mistral-a"));
  auto unmanaged = client_->ListEndpointSlices("ml", "!endpointslice.kubernetes.io/managed-by");
  ASSERT_TRUE(unmanaged.ok());
  EXPECT_THAT(unmanaged->items, IsEmpty());

  // What the server refuses comes back as the client's kInvalidArgument.
  EXPECT_EQ(client_->ListEndpointSlices("ml", "a in (b,c)").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(EndpointSliceClientTest, WatchWithASelectorSeesObjectsEnterAndLeaveIt) {
  Put("ml", "llama-a", "llama", {"10.0.0.1"});
  auto listed = client_->ListEndpointSlices("ml", "kubernetes.io/service-name=llama");
  ASSERT_TRUE(listed.ok());

  std::vector<std::string> seen;
  std::vector<std::string> versions;
  std::thread changes([&] {
    ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
    Put("ml", "mistral-a", "mistral", {"10.0.0.3"});  // never in the selection
    Put("ml", "llama-a", "llama", {"10.0.0.1", "10.0.0.4"});
    Put("ml", "mistral-a", "llama", {"10.0.0.3"});  // relabelled into it
    Put("ml", "llama-a", "mistral", {"10.0.0.1"});  // and out of it
    server_.SendBookmarks();
    server_.CloseWatches();
  });
  CancelToken cancel;
  absl::Status s = client_->WatchEndpointSlices(
      "ml", listed->resource_version, absl::Seconds(30),
      [&](const EndpointSliceWatchEvent& ev) {
        using Type = EndpointSliceWatchEvent::Type;
        const char* type = ev.type == Type::kAdded      ? "ADDED"
                           : ev.type == Type::kModified ? "MODIFIED"
                           : ev.type == Type::kDeleted  ? "DELETED"
                                                        : "BOOKMARK";
        seen.push_back(absl::StrCat(type, " ", ev.object.Key(), " ", ev.object.endpoints.size()));
        versions.push_back(ev.resource_version);
        return true;
      },
      &cancel, "kubernetes.io/service-name=llama");
  changes.join();
  ASSERT_TRUE(s.ok()) << s;
  // DELETED carries the object as it was (still labelled llama), at the new version.
  EXPECT_THAT(seen, ElementsAre("MODIFIED ml/llama-a 2", "ADDED ml/mistral-a 1",
                                "DELETED ml/llama-a 2", "BOOKMARK / 0"));
  EXPECT_EQ(versions.back(), absl::StrCat(server_.resource_version()));
  EXPECT_EQ(versions[2], absl::StrCat(server_.resource_version()));
}

class EndpointSliceWatcherTest : public EndpointSliceClientTest {
 protected:
  std::unique_ptr<EndpointSliceWatcher> MakeWatcher(std::string ns,
                                                    std::string label_selector = "") {
    return std::make_unique<EndpointSliceWatcher>(
        client_.get(), TestWatcherOptions(std::move(ns), &sleeper_, std::move(label_selector)),
        [this](WatchEventType t, const EndpointSlice& s) { log_.Add(t, s); });
  }

  RecordingSleeper sleeper_;
  EventLogOf<EndpointSlice> log_;
};

TEST_F(EndpointSliceWatcherTest, ListsThenStreamsAddedModifiedDeleted) {
  Put("ml", "llama-a", "llama", {"10.0.0.1"}, {"10.0.0.1"});
  Put("other", "x", "x", {"10.9.0.1"});
  auto watcher = MakeWatcher("ml");
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/llama-a"));
  EXPECT_FALSE(log_.objects()[0].endpoints[0].ready);

  Put("ml", "llama-a", "llama", {"10.0.0.1"});  // the pod became ready
  Put("ml", "llama-b", "llama", {"10.0.0.2"});
  ASSERT_TRUE(server_.Delete(EndpointSlices("ml") + "/llama-a").ok());
  ASSERT_TRUE(log_.WaitFor(4));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/llama-a", "MODIFIED ml/llama-a",
                                        "ADDED ml/llama-b", "DELETED ml/llama-a"));
  EXPECT_TRUE(log_.objects()[1].endpoints[0].ready);
  std::vector<std::string> keys;
  for (const EndpointSlice& s : watcher->Snapshot()) keys.push_back(s.Key());
  EXPECT_THAT(keys, ElementsAre("ml/llama-b"));

  // A bookmark moves the resourceVersion on without an event for the handler.
  Put("other", "y", "y", {"10.9.0.2"});
  server_.SendBookmarks();
  const std::string latest = absl::StrCat(server_.resource_version());
  for (int i = 0; i < 100 && watcher->resource_version() != latest; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(watcher->resource_version(), latest);
  watcher->Stop();
  EXPECT_EQ(log_.lines().size(), 4u);
  EXPECT_EQ(watcher->stats().lists, 1);
}

TEST_F(EndpointSliceWatcherTest, GoneReListsAndTheHandlerSeesOnlyTheDifference) {
  server_.SetGoneAsErrorEvent(true);
  Put("ml", "a", "llama", {"10.0.0.1"});
  Put("ml", "b", "llama", {"10.0.0.2"});
  Put("ml", "keep", "llama", {"10.0.0.3"});
  auto watcher = MakeWatcher("ml");
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));

  sleeper_.Hold();
  server_.FailNext(1, 503, -1, "watch=1");
  server_.CloseWatches();
  ASSERT_TRUE(sleeper_.WaitForCalls(1));
  Put("ml", "a", "llama", {"10.0.0.1", "10.0.0.9"});
  ASSERT_TRUE(server_.Delete(EndpointSlices("ml") + "/b").ok());
  Put("ml", "c", "llama", {"10.0.0.4"});
  server_.Compact();
  sleeper_.Release();

  ASSERT_TRUE(log_.WaitFor(6));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  Put("ml", "d", "llama", {"10.0.0.5"});
  ASSERT_TRUE(log_.WaitFor(7));
  const auto lines = log_.lines();
  ASSERT_EQ(lines.size(), 7u) << ::testing::PrintToString(lines);
  EXPECT_THAT(std::vector<std::string>(lines.begin() + 3, lines.begin() + 6),
              UnorderedElementsAre("MODIFIED ml/a", "DELETED ml/b", "ADDED ml/c"));
  EXPECT_EQ(lines[6], "ADDED ml/d");
  watcher->Stop();
  EXPECT_EQ(watcher->stats().gone, 1);
  EXPECT_EQ(watcher->stats().lists, 2);
}

TEST_F(EndpointSliceWatcherTest, LabelSelectorFiltersListsAndWatches) {
  Put("ml", "llama-a", "llama", {"10.0.0.1"});
  Put("ml", "mistral-a", "mistral", {"10.0.0.3"});
  auto watcher = MakeWatcher("", "kubernetes.io/service-name=llama");
  watcher->Start();
  ASSERT_TRUE(watcher->WaitForSync(absl::Seconds(10)));
  ASSERT_TRUE(server_.WaitForWatches(1, absl::Seconds(10)));
  Put("ml", "mistral-b", "mistral", {"10.0.0.4"});
  Put("ml", "llama-b", "llama", {"10.0.0.2"});
  Put("ml", "mistral-a", "llama", {"10.0.0.3"});  // now serves llama
  ASSERT_TRUE(log_.WaitFor(3));
  Put("ml", "llama-a", "mistral", {"10.0.0.1"});  // no longer llama's
  ASSERT_TRUE(log_.WaitFor(4));
  EXPECT_THAT(log_.lines(), ElementsAre("ADDED ml/llama-a", "ADDED ml/llama-b",
                                        "ADDED ml/mistral-a", "DELETED ml/llama-a"));
  for (const auto& r : server_.requests()) {
    if (r.target.find("endpointslices") == std::string::npos) continue;
    EXPECT_THAT(r.target, HasSubstr("labelSelector=kubernetes.io%2Fservice-name%3Dllama"));
  }
  watcher->Stop();
}

}  // namespace
}  // namespace zeroscale::kube

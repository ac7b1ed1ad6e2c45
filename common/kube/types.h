// Domain types for the few Kubernetes objects zeroscale touches (Scale, the
// CustomAutoscaler custom resource and its status, the AllocationPolicy custom resource,
// Lease, Event, EndpointSlice, Pod, Node, a workload's pod template requests) and
// their JSON wire mapping. The real API server omits zero-valued fields (a Scale at 0 replicas
// comes back as "spec": {}), so every parser reads a missing field as its zero value. Value types
// and pure functions; thread-safe.
#ifndef ZEROSCALE_COMMON_KUBE_TYPES_H_
#define ZEROSCALE_COMMON_KUBE_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/model/keep_alive.h"
#include "common/model/quantity.h"
#include "common/model/scaling_rule.h"

namespace zeroscale::kube {

inline constexpr char kCustomAutoscalerGroup[] = "autoscaler-group.autoscaler";
inline constexpr char kCustomAutoscalerVersion[] = "v1alpha1";
inline constexpr char kCustomAutoscalerKind[] = "CustomAutoscaler";
inline constexpr char kCustomAutoscalerPlural[] = "customautoscalers";

// AllocationPolicy: a resource budget for a group of workloads (zeroscale.io/v1alpha1,
// namespaced; the object's name is the group's name, CustomAutoscalers of its namespace
// join it with spec.allocation.group).
inline constexpr char kAllocationPolicyGroup[] = "zeroscale.io";
inline constexpr char kAllocationPolicyVersion[] = "v1alpha1";
inline constexpr char kAllocationPolicyKind[] = "AllocationPolicy";
inline constexpr char kAllocationPolicyPlural[] = "allocationpolicies";
// At most this many resources in spec.limits, and in one container's requests or limits.
inline constexpr size_t kMaxResourceNames = 32;

// A scalable workload: kind is "Deployment" or "StatefulSet".
struct WorkloadRef {
  std::string namespace_;
  std::string kind;
  std::string name;
  // "<namespace>/<kind>/<name>", the spec's workload id.
  std::string Id() const;
  bool operator==(const WorkloadRef& o) const {
    return namespace_ == o.namespace_ && kind == o.kind && name == o.name;
  }
};

// The autoscaling/v1 Scale subresource.
struct Scale {
  std::string namespace_;
  std::string name;
  std::string uid;
  // Pass back on writes so that a concurrent change is refused rather than overwritten.
  std::string resource_version;
  int32_t spec_replicas = 0;    // desired
  int32_t status_replicas = 0;  // observed by the workload's controller
  std::string selector;         // label selector of the pods, "app=llama"
};

struct ScaleTargetRef {
  std::string api_version;  // "apps/v1"
  std::string kind;         // "Deployment" | "StatefulSet"
  std::string name;
};

// spec.route: how zeroscale-balancer routes requests to the scale target in a cluster,
// and where it finds the target's pods.
struct RouteSpec {
  std::string host;         // requests whose Host header is this ("" when by path only)
  std::string path_prefix;  // requests under this path, starts with '/' ("" when by host)
  // The Service whose EndpointSlices list the pods; "" means the scale target's name.
  std::string service;
  // The EndpointSlice port: a port name or a number in decimal (the CR may write either);
  // "" means the slice's only or first port.
  std::string port;
  // How long the balancer holds a request while the workload wakes; nullopt: its default.
  std::optional<int32_t> activation_timeout_seconds;
};

struct CustomAutoscalerSpec {
  ScaleTargetRef scale_target_ref;
  // Absent means 1, as for a HorizontalPodAutoscaler; 0 allows scale to zero.
  int32_t min_replicas = 1;
  int32_t max_replicas = 0;
  // Each rule's `target` is set to the scale target's workload id.
  std::vector<ScalingRule> rules;
  // 0: no idle-based scale to zero.
  int64_t idle_timeout_seconds = 0;
  // spec.keepAlive: the keep-alive policy (fixed when absent).
  KeepAliveConfig keep_alive;
  // For the balancer; the scaler does not use it.
  std::optional<RouteSpec> route;
  // spec.allocation.group: the AllocationPolicy (of this namespace) whose budget the
  // target's replicas count against; "" for none.
  std::string allocation_group;
};

struct Condition {
  std::string type;    // "Ready", "Active", "ScalingLimited"
  std::string status;  // "True" | "False" | "Unknown"
  std::string reason;  // CamelCase
  std::string message;
  absl::Time last_transition_time = absl::InfinitePast();
  int64_t observed_generation = 0;
};

// What the scaler reports back on the CustomAutoscaler (the status subresource).
struct CustomAutoscalerStatus {
  std::optional<int32_t> replicas;
  std::optional<int32_t> desired_replicas;
  // How many rules the automaton uses: spec.rules plus the rules stored in Redis
  // (scaling_rule:<id>) whose target is this CustomAutoscaler's.
  std::optional<int32_t> effective_rules;
  std::string state;                 // the automaton's state, "Active", "ScaledToZero"
  std::string last_decision;         // "INCREASE_INSTANCES 1 -> 2"
  std::string last_decision_reason;  // why, in words
  absl::Time last_decision_time = absl::InfinitePast();  // omitted when infinite
  int64_t observed_generation = 0;                       // omitted when 0
  std::vector<Condition> conditions;
};

struct CustomAutoscaler {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  CustomAutoscalerSpec spec;
  // Not OK when the spec cannot be used (bad rule, unknown kind, min > max): the object
  // is still delivered so that the reconciler can say so in its status.
  absl::Status spec_error;
  // Not OK when spec.route is present but unusable (a host that is not a DNS name, a
  // pathPrefix without '/', neither of them, a bad service or port), naming the field.
  // Kept apart from spec_error so that a bad route never stops the scaling; spec.route
  // still holds what could be read, for the balancer to report.
  absl::Status route_error;
  CustomAutoscalerStatus status;

  std::string Key() const { return namespace_ + "/" + name; }
  // The scale target, in this object's namespace.
  WorkloadRef Target() const;
};

// A resource budget shared by the workloads of one group.
struct AllocationPolicy {
  std::string namespace_;
  std::string name;  // the group's name
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  // spec.limits: the most the group's replicas may request together, in milli-units.
  ResourceAmounts limits;
  // Not OK when spec.limits cannot be used (a bad quantity, too many names), naming the
  // field; the object is still delivered so that the scaler can say so.
  absl::Status spec_error;

  std::string Key() const { return namespace_ + "/" + name; }
};

// A list of any resource, as a list call returns it.
template <typename T>
struct ObjectList {
  std::vector<T> items;
  std::string resource_version;  // where a watch continues from
};
using CustomAutoscalerList = ObjectList<CustomAutoscaler>;
using AllocationPolicyList = ObjectList<AllocationPolicy>;

// coordination.k8s.io/v1 Lease.
struct Lease {
  std::string namespace_;
  std::string name;
  std::string resource_version;
  // metadata.annotations: the holder may publish facts about itself here (the scaler its
  // gRPC address); a writer keeps the ones it does not own.
  std::map<std::string, std::string> annotations;
  std::string holder_identity;
  int32_t lease_duration_seconds = 0;
  absl::Time acquire_time = absl::InfinitePast();
  absl::Time renew_time = absl::InfinitePast();
  int32_t lease_transitions = 0;

  std::string Key() const { return namespace_ + "/" + name; }
};
using LeaseList = ObjectList<Lease>;

// The annotation on the scaler's Lease that names the holder's gRPC address, HOST:PORT.
inline constexpr char kScalerGrpcAddressAnnotation[] = "zeroscale.io/grpc-address";

struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
};

// A core/v1 Event, as created and as read back.
struct Event {
  std::string namespace_;  // always the involved object's namespace
  std::string name;
  std::string resource_version;
  ObjectReference involved_object;
  std::string type;  // "Normal" | "Warning"
  std::string reason;
  std::string message;
  int32_t count = 1;
  absl::Time first_timestamp = absl::InfinitePast();
  absl::Time last_timestamp = absl::InfinitePast();
  std::string reporting_component;
  std::string reporting_instance;
};

// discovery.k8s.io/v1 EndpointSlice: some of a Service's endpoints (pods) and ports.
inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";

struct EndpointSlicePort {
  std::string name;              // "" for the Service's one unnamed port
  int32_t port = 0;              // 0 when absent: the API's "all ports"
  std::string protocol = "TCP";  // the API's default
};

// One endpoint (usually one pod). The conditions follow the API's reading of absent
// values: ready absent means ready, serving absent means as ready, terminating absent
// means not terminating.
struct SliceEndpoint {
  std::vector<std::string> addresses;  // interchangeable; consumers may use the first
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  // The pod behind the endpoint: kind "Pod", namespace, name (empty when not a pod).
  ObjectReference target_ref;
  std::string node_name;
};

struct EndpointSlice {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  // The owning Service, from the label kubernetes.io/service-name ("" without one).
  std::string service_name;
  std::string address_type;  // "IPv4" | "IPv6" | "FQDN"
  std::vector<EndpointSlicePort> ports;
  std::vector<SliceEndpoint> endpoints;

  std::string Key() const { return namespace_ + "/" + name; }
};
using EndpointSliceList = ObjectList<EndpointSlice>;

// core/v1 Pod: only what tells whether it exists, runs and serves, where it is
// scheduled and what it requests.
struct Pod {
  std::string namespace_;
  std::string name;
  std::string uid;
  std::string resource_version;
  std::string phase;         // "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown"
  bool ready = false;        // condition Ready is "True"
  bool terminating = false;  // metadata.deletionTimestamp is set: it is being deleted
  std::string pod_ip;
  std::string node_name;  // spec.nodeName: "" until scheduled
  // What the scheduler accounts for the pod: PodRequests() of its spec.
  ResourceAmounts requests;
  // Condition PodScheduled is False with reason Unschedulable: the scheduler found no
  // node; its message says why ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu.").
  bool unschedulable = false;
  std::string unschedulable_message;

  std::string Key() const { return namespace_ + "/" + name; }
  // Running and Ready and not being deleted: it takes traffic, so its sidecar reports.
  bool Serving() const { return phase == "Running" && ready && !terminating; }
  // Succeeded or Failed: it holds no resources on its node any more.
  bool Terminal() const { return phase == "Succeeded" || phase == "Failed"; }
};
using PodList = ObjectList<Pod>;

// core/v1 Node: what the scheduler may place on it.
struct Node {
  std::string name;
  std::string resource_version;
  bool unschedulable = false;   // spec.unschedulable (cordoned)
  bool ready = true;            // condition Ready, when present, is "True"
  ResourceAmounts allocatable;  // status.allocatable, milli-units

  std::string Key() const { return name; }
};
using NodeList = ObjectList<Node>;

// JSON mapping. Parsers return kInvalidArgument naming the field; a missing field reads
// as its zero value. Writers emit exactly what the API server expects.
absl::StatusOr<Scale> ScaleFromJson(absl::string_view json);
absl::StatusOr<CustomAutoscaler> CustomAutoscalerFromJson(absl::string_view json);
absl::StatusOr<CustomAutoscalerList> CustomAutoscalerListFromJson(absl::string_view json);
// {"status": {...}} for a merge patch of the status subresource.
std::string CustomAutoscalerStatusPatch(const CustomAutoscalerStatus& status);
absl::StatusOr<EndpointSlice> EndpointSliceFromJson(absl::string_view json);
absl::StatusOr<EndpointSliceList> EndpointSliceListFromJson(absl::string_view json);
absl::StatusOr<Pod> PodFromJson(absl::string_view json);
absl::StatusOr<PodList> PodListFromJson(absl::string_view json);
absl::StatusOr<Node> NodeFromJson(absl::string_view json);
absl::StatusOr<AllocationPolicy> AllocationPolicyFromJson(absl::string_view json);
// What one replica of a Deployment or StatefulSet (the object's JSON) requests: the
// PodRequests of spec.template.spec, kInvalidArgument naming the field of a bad quantity.
absl::StatusOr<ResourceAmounts> PodTemplateRequestsFromJson(absl::string_view json);
absl::StatusOr<Lease> LeaseFromJson(absl::string_view json);
absl::StatusOr<LeaseList> LeaseListFromJson(absl::string_view json);
std::string LeaseToJson(const Lease& lease);
absl::StatusOr<Event> EventFromJson(absl::string_view json);
std::string EventToJson(const Event& event);

// metav1.MicroTime, "2026-11-25T03:38:33.123456Z", as Leases carry.
std::string FormatMicroTime(absl::Time t);
// metav1.Time, whole seconds, "2026-11-25T03:38:33Z".
std::string FormatKubeTime(absl::Time t);

}  // namespace zeroscale::kube

#endif  // ZEROSCALE_COMMON_KUBE_TYPES_H_

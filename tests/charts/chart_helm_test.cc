// Checks the Helm chart as the real helm renders it (helm from ZEROSCALE_KUBE_ASSETS, the
// directory the real-control-plane tests take their binaries from; skipped without it):
// `helm lint --strict` and `helm template` for the default values and for each switch a
// user may flip, and in every rendered object: no key emitted twice (a label block that
// names app.kubernetes.io/instance twice), the release's labels, selectors that select
// their own pods, non-root read-only containers with probes, Redis durable on a
// PersistentVolumeClaim, the scaler's pod template free of anything random (so an upgrade
// with the same values rolls nothing), kubeVersion, RBAC scoping and NOTES that match the
// values. Installing, upgrading and uninstalling against a real API server is the
// control-plane suite's job (tests/kube).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/child_process.h"
#include "yaml-cpp/yaml.h"

namespace zeroscale {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kChart = ZS_SOURCE_DIR "/charts/zeroscale";
constexpr char kRelease[] = "zs";
constexpr char kNamespace[] = "zeroscale";

// Every switch a user may flip, each on its own; "" is the default values.
const std::vector<std::string> kValueSets = {
    "",
    "--set redis.persistence.enabled=false",
    "--set redis.persistence.storageClass=-",
    "--set redis.enabled=false --set redis.externalAddress=redis.example:6379",
    "--set redis.networkPolicy.enabled=false",
    "--set webhook.onlyLabelledNamespaces=true",
    "--set webhook.enabled=false",
    "--set webhook.certManager.enabled=true",
    "--set webhook.certManager.enabled=true --set webhook.certManager.issuerRef.kind=ClusterIssuer "
    "--set webhook.certManager.issuerRef.name=my-ca",
    "--set tls.enabled=false",
    "--set scaler.watchNamespace=ml --set balancer.watchNamespace=ml",
    "--set balancer.enabled=false",
    "--set scaler.replicas=1 --set balancer.replicas=1",
    "--set prometheusRule.enabled=true --set prometheusRule.labels.release=prom",
    "--set grafanaDashboard.enabled=true --set grafanaDashboard.annotations.grafana_folder=ml",
    "--set metrics.serviceMonitor.enabled=true --set metrics.podAnnotations=false",
    "--set balancer.service.type=LoadBalancer",
    // The production install users copy (examples/values-production.yaml).
    "-f " ZS_SOURCE_DIR "/examples/values-production.yaml",
};

class ChartHelm : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* assets = std::getenv("ZEROSCALE_KUBE_ASSETS");
    if (assets == nullptr || *assets == '\0') {
      GTEST_SKIP() << "ZEROSCALE_KUBE_ASSETS is not set: it names the directory holding helm "
                      "(and kube-apiserver, kube-controller-manager) for these checks";
    }
    helm_ = absl::StrCat(assets, "/helm");
    ASSERT_TRUE(std::filesystem::exists(helm_)) << helm_ << " does not exist";
    home_ = absl::StrCat(::testing::TempDir(), "/zs-helm-", ::getpid());
    std::filesystem::create_directories(home_);
  }

  // Runs helm with its own config, cache and data directories; output and exit status.
  std::pair<std::string, int> Helm(const std::string& args) {
    const std::string out =
        testing::Shell(absl::StrCat("HELM_CONFIG_HOME=", home_, "/config HELM_CACHE_HOME=", home_,
                                    "/cache HELM_DATA_HOME=", home_, "/data KUBECONFIG=/dev/null ",
                                    helm_, " ", args, " 2>&1; echo \"exit=$?\""));
    const size_t at = out.rfind("exit=");
    return {out.substr(0, at), std::atoi(out.c_str() + at + 5)};
  }

  std::string Render(const std::string& values, const std::string& chart = kChart,
                     const std::string& extra = "") {
    auto [out, rc] = Helm(absl::StrCat("template ", kRelease, " ", chart, " -n ", kNamespace, " ",
                                       values, " ", extra));
    EXPECT_EQ(rc, 0) << "helm template " << values << ":\n" << out;
    return out;
  }

  std::vector<YAML::Node> Objects(const std::string& values) {
    std::vector<YAML::Node> out;
    for (const YAML::Node& doc : YAML::LoadAll(Render(values))) {
      if (doc.IsMap()) out.push_back(doc);
    }
    return out;
  }

  static std::string Id(const YAML::Node& o) {
    return absl::StrCat(o["kind"].as<std::string>(), "/", o["metadata"]["name"].as<std::string>());
  }

  static const YAML::Node* Find(const std::vector<YAML::Node>& objects, const std::string& kind,
                                const std::string& name) {
    for (const YAML::Node& o : objects) {
      if (o["kind"].as<std::string>() == kind && o["metadata"]["name"].as<std::string>() == name)
        return &o;
    }
    return nullptr;
  }

  // NOTES.txt as helm renders it for `values` (helm template leaves NOTES out: a copy of
  // the chart renders it into a ConfigMap through tpl).
  std::string Notes(const std::string& values, const std::string& kube_version = "") {
    const std::string copy = absl::StrCat(home_, "/notes-chart");
    std::filesystem::remove_all(copy);
    std::filesystem::copy(kChart, copy, std::filesystem::copy_options::recursive);
    std::filesystem::rename(copy + "/templates/NOTES.txt", copy + "/notes.txt");
    std::ofstream(copy + "/templates/zz-notes.yaml")
        << "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
           "data: {notes: {{ tpl (.Files.Get \"notes.txt\") . | toJson }}}\n";
    const std::string out =
        Render(values, copy,
               absl::StrCat("--show-only templates/zz-notes.yaml",
                            kube_version.empty() ? "" : " --kube-version " + kube_version));
    return YAML::Load(out)["data"]["notes"].as<std::string>();
  }

  std::string helm_, home_;
};

// Every mapping's keys are distinct (yaml-cpp keeps a repeated key as a second entry).
void ExpectNoDuplicateKeys(const YAML::Node& node, const std::string& where) {
  if (node.IsMap()) {
    std::set<std::string> keys;
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      EXPECT_TRUE(keys.insert(key).second) << where << ": key '" << key << "' appears twice";
      ExpectNoDuplicateKeys(kv.second, absl::StrCat(where, ".", key));
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      ExpectNoDuplicateKeys(node[i], absl::StrCat(where, "[", i, "]"));
    }
  }
}

// `selector` (a label map) selects `labels`.
bool Selects(const YAML::Node& selector, const YAML::Node& labels) {
  if (!selector.IsMap() || selector.size() == 0) return false;
  for (const auto& kv : selector) {
    const YAML::Node v = labels[kv.first.as<std::string>()];
    if (!v || v.as<std::string>() != kv.second.as<std::string>()) return false;
  }
  return true;
}

bool IsWorkload(const YAML::Node& o) {
  const std::string kind = o["kind"].as<std::string>();
  return kind == "Deployment" || kind == "StatefulSet";
}

void ExpectHardenedPod(const YAML::Node& workload) {
  const std::string id = workload["metadata"]["name"].as<std::string>();
  const YAML::Node pod = workload["spec"]["template"]["spec"];
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>(false)) << id;
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"].as<std::string>(""), "RuntimeDefault")
      << id;
  for (const YAML::Node& c : pod["containers"]) {
    const std::string name = absl::StrCat(id, "/", c["name"].as<std::string>());
    const YAML::Node sc = c["securityContext"];
    EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>(false)) << name;
    EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true)) << name;
    bool drops_all = false;
    for (const YAML::Node& d : sc["capabilities"]["drop"])
      drops_all |= d.as<std::string>() == "ALL";
    EXPECT_TRUE(drops_all) << name;
    EXPECT_TRUE(c["readinessProbe"]) << name;
    EXPECT_TRUE(c["livenessProbe"]) << name;
    EXPECT_TRUE(c["resources"]["requests"]["memory"]) << name;
    EXPECT_TRUE(c["resources"]["limits"]["memory"]) << name;
  }
}

// The args of the first container of workload `name`, one string.
std::string ArgsOf(const std::vector<YAML::Node>& objects, const std::string& name) {
  std::string out;
  for (const YAML::Node& o : objects) {
    if (!IsWorkload(o) || o["metadata"]["name"].as<std::string>() != name) continue;
    for (const YAML::Node& a : o["spec"]["template"]["spec"]["containers"][0]["args"]) {
      absl::StrAppend(&out, a.as<std::string>(), " ");
    }
  }
  return out;
}

TEST_F(ChartHelm, TlsIsOnByDefaultWithCertificatesOfTheReleaseCa) {
  const std::string scaler = "zs-zeroscale-scaler", balancer = "zs-zeroscale-balancer";
  std::vector<YAML::Node> objects = Objects("");
  EXPECT_THAT(ArgsOf(objects, scaler), HasSubstr("--tls-cert=/etc/zeroscale/tls/tls.crt "));
  EXPECT_THAT(ArgsOf(objects, scaler), HasSubstr("--sidecar-scaler-ca=/etc/zeroscale/tls/ca.crt "));
  EXPECT_THAT(ArgsOf(objects, balancer), HasSubstr("--scaler-ca=/etc/zeroscale/tls/ca.crt "));
  EXPECT_THAT(ArgsOf(objects, balancer),
              HasSubstr("--scaler-tls-server-name=zs-zeroscale-scaler.zeroscale.svc "));
  EXPECT_THAT(ArgsOf(objects, balancer), HasSubstr("--admin-tls-cert=/etc/zeroscale/tls/tls.crt "));
  const YAML::Node* ca = Find(objects, "Secret", "zs-zeroscale-webhook-ca");
  ASSERT_NE(ca, nullptr);
  for (const std::string& name : {"zs-zeroscale-webhook-tls", "zs-zeroscale-balancer-admin-tls"}) {
    const YAML::Node* secret = Find(objects, "Secret", name);
    ASSERT_NE(secret, nullptr) << name;
    // Signed by the release CA, which the programs get (not its key).
    EXPECT_EQ((*secret)["data"]["ca.crt"].as<std::string>(),
              (*ca)["data"]["tls.crt"].as<std::string>())
        << name;
    EXPECT_FALSE((*secret)["data"]["ca.key"]) << name;
  }
  for (const YAML::Node& o : objects) {
    if (!IsWorkload(o) || o["metadata"]["name"].as<std::string>() == "zs-zeroscale-redis") continue;
    EXPECT_EQ(o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["scheme"]
                  .as<std::string>(""),
              "HTTPS")
        << Id(o);
  }

  objects = Objects("--set tls.enabled=false");
  EXPECT_THAT(ArgsOf(objects, scaler), Not(HasSubstr("--tls-cert")));
  EXPECT_THAT(ArgsOf(objects, balancer), Not(HasSubstr("--scaler-ca")));
  EXPECT_EQ(Find(objects, "Secret", "zs-zeroscale-balancer-admin-tls"), nullptr);

  // Without the webhook the CA and the scaler's certificate are still issued.
  objects = Objects("--set webhook.enabled=false");
  EXPECT_THAT(ArgsOf(objects, scaler), HasSubstr("--tls-cert="));
  EXPECT_THAT(ArgsOf(objects, scaler), Not(HasSubstr("--webhook-cert")));
  EXPECT_NE(Find(objects, "Secret", "zs-zeroscale-webhook-tls"), nullptr);
  EXPECT_EQ(Find(objects, "MutatingWebhookConfiguration", "zs-zeroscale-sidecar-injector"),
            nullptr);

  // cert-manager: one CA only with an issuerRef; a self-signed Issuer leaves TLS off.
  objects = Objects("--set webhook.certManager.enabled=true");
  EXPECT_THAT(ArgsOf(objects, scaler), Not(HasSubstr("--tls-cert")));
  objects = Objects(
      "--set webhook.certManager.enabled=true --set webhook.certManager.issuerRef.kind=Issuer "
      "--set webhook.certManager.issuerRef.name=my-ca");
  EXPECT_THAT(ArgsOf(objects, scaler), HasSubstr("--tls-cert="));
  EXPECT_NE(Find(objects, "Certificate", "zs-zeroscale-balancer-admin"), nullptr);
}

TEST_F(ChartHelm, LintsStrictForEveryValueSet) {
  for (const std::string& values : kValueSets) {
    auto [out, rc] = Helm(absl::StrCat("lint --strict ", kChart, " ", values));
    EXPECT_EQ(rc, 0) << values << ":\n" << out;
    EXPECT_THAT(out, HasSubstr("0 chart(s) failed")) << values;
  }
}

TEST_F(ChartHelm, EveryRenderedObjectIsWellFormed) {
  for (const std::string& values : kValueSets) {
    SCOPED_TRACE(values.empty() ? "default values" : values);
    const std::vector<YAML::Node> objects = Objects(values);
    ASSERT_GT(objects.size(), 5u);
    std::vector<const YAML::Node*> workloads;
    for (const YAML::Node& o : objects) {
      const std::string id = Id(o);
      ExpectNoDuplicateKeys(o, id);
      const YAML::Node labels = o["metadata"]["labels"];
      EXPECT_EQ(labels["app.kubernetes.io/instance"].as<std::string>(""), kRelease) << id;
      EXPECT_TRUE(labels["app.kubernetes.io/name"]) << id;
      EXPECT_EQ(labels["app.kubernetes.io/part-of"].as<std::string>(""), "zeroscale") << id;
      EXPECT_EQ(labels["app.kubernetes.io/managed-by"].as<std::string>(""), "Helm") << id;
      if (IsWorkload(o)) {
        workloads.push_back(&o);
        EXPECT_TRUE(Selects(o["spec"]["selector"]["matchLabels"],
                            o["spec"]["template"]["metadata"]["labels"]))
            << id << ": its selector does not select its own pods";
        ExpectHardenedPod(o);
      }
    }
    // Services, disruption budgets and network policies each select exactly one workload's
    // pods, and a Service's ports name ports those pods have.
    const auto selector_of = [](const YAML::Node& o) -> YAML::Node {
      const std::string kind = o["kind"].as<std::string>();
      if (kind == "Service") return o["spec"]["selector"];
      if (kind == "PodDisruptionBudget") return o["spec"]["selector"]["matchLabels"];
      return o["spec"]["podSelector"]["matchLabels"];  // NetworkPolicy
    };
    for (const YAML::Node& o : objects) {
      const std::string kind = o["kind"].as<std::string>();
      if (kind != "Service" && kind != "PodDisruptionBudget" && kind != "NetworkPolicy") continue;
      const YAML::Node selector = selector_of(o);
      std::vector<const YAML::Node*> selected;
      for (const YAML::Node* w : workloads) {
        if (Selects(selector, (*w)["spec"]["template"]["metadata"]["labels"])) {
          selected.push_back(w);
        }
      }
      ASSERT_EQ(selected.size(), 1u) << Id(o) << " selects " << selected.size() << " workloads";
      if (kind != "Service") continue;
      std::set<std::string> ports;
      for (const YAML::Node& c : (*selected[0])["spec"]["template"]["spec"]["containers"]) {
        for (const YAML::Node& p : c["ports"]) ports.insert(p["name"].as<std::string>());
      }
      for (const YAML::Node& p : o["spec"]["ports"]) {
        EXPECT_TRUE(ports.count(p["targetPort"].as<std::string>()))
            << Id(o) << " targets port " << p["targetPort"] << ", which its pods do not name";
      }
    }
  }
}

// The first `helm upgrade` used to roll the scaler for nothing: its pod template carried a
// checksum of a second rendering of webhook.yaml, which generates a new CA every time.
// Nothing random may reach a pod template: two renderings give the same workloads.
TEST_F(ChartHelm, WorkloadsRenderTheSameEveryTime) {
  {
    const std::vector<YAML::Node> first = Objects("");
    const std::vector<YAML::Node> second = Objects("");
    int compared = 0;
    for (const YAML::Node& o : first) {
      if (!IsWorkload(o)) continue;
      const YAML::Node* again =
          Find(second, o["kind"].as<std::string>(), o["metadata"]["name"].as<std::string>());
      ASSERT_NE(again, nullptr);
      EXPECT_EQ(YAML::Dump(o), YAML::Dump(*again)) << Id(o) << " differs between renderings";
      ++compared;
    }
    EXPECT_EQ(compared, 3);
  }
}

TEST_F(ChartHelm, RedisIsDurable) {
  std::ifstream conf_file(kChart + "/files/redis.conf");
  std::stringstream conf;
  conf << conf_file.rdbuf();
  EXPECT_THAT(conf.str(), HasSubstr("\nappendonly yes\n"));
  EXPECT_THAT(conf.str(), HasSubstr("\nappendfsync always\n"));

  const std::vector<YAML::Node> objects = Objects("");
  const YAML::Node* redis = Find(objects, "StatefulSet", "zs-zeroscale-redis");
  ASSERT_NE(redis, nullptr) << "Redis runs as a StatefulSet";
  const YAML::Node* config = Find(objects, "ConfigMap", "zs-zeroscale-redis");
  ASSERT_NE(config, nullptr);
  EXPECT_EQ((*config)["data"]["redis.conf"].as<std::string>() + "\n", conf.str());
  const YAML::Node pod = (*redis)["spec"]["template"]["spec"];
  EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>(true));
  EXPECT_TRUE(pod["securityContext"]["fsGroup"]);
  const std::string command = YAML::Dump(pod["containers"][0]["command"]);
  EXPECT_THAT(command, HasSubstr("/etc/zeroscale/redis/redis.conf"));
  EXPECT_THAT(command, HasSubstr("/data"));
  EXPECT_TRUE(pod["containers"][0]["startupProbe"]);
  // The data on a claim; no emptyDir unless asked for.
  const YAML::Node claims = (*redis)["spec"]["volumeClaimTemplates"];
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(claims[0]["metadata"]["name"].as<std::string>(), "data");
  EXPECT_EQ(claims[0]["spec"]["resources"]["requests"]["storage"].as<std::string>(), "8Gi");
  EXPECT_FALSE(claims[0]["spec"]["storageClassName"]);
  EXPECT_THAT(YAML::Dump(pod["volumes"]), Not(HasSubstr("emptyDir")));
  EXPECT_NE(Find(objects, "NetworkPolicy", "zs-zeroscale-redis"), nullptr);

  const std::vector<YAML::Node> ephemeral = Objects("--set redis.persistence.enabled=false");
  const YAML::Node* r2 = Find(ephemeral, "StatefulSet", "zs-zeroscale-redis");
  ASSERT_NE(r2, nullptr);
  EXPECT_FALSE((*r2)["spec"]["volumeClaimTemplates"]);
  EXPECT_THAT(YAML::Dump((*r2)["spec"]["template"]["spec"]["volumes"]), HasSubstr("emptyDir"));

  const std::vector<YAML::Node> no_class = Objects("--set redis.persistence.storageClass=-");
  EXPECT_EQ(
      (*Find(no_class, "StatefulSet",
             "zs-zeroscale-redis"))["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"]
          .as<std::string>("unset"),
      "");
}

TEST_F(ChartHelm, KubeVersionIsWhatTheCrdNeeds) {
  auto [old_out, old_rc] = Helm(absl::StrCat("template zs ", kChart, " --kube-version 1.23.9"));
  EXPECT_NE(old_rc, 0);
  EXPECT_THAT(old_out, HasSubstr("kubeVersion"));
  EXPECT_EQ(Helm(absl::StrCat("template zs ", kChart, " --kube-version 1.24.0")).second, 0);
  // On 1.24 the CRD's validation rules need a feature gate: NOTES says so, and only there.
  EXPECT_THAT(Notes("", "1.24.0"), HasSubstr("CustomResourceValidationExpressions=true"));
  EXPECT_THAT(Notes("", "1.25.0"), Not(HasSubstr("CustomResourceValidationExpressions")));
}

TEST_F(ChartHelm, NotesMatchTheValues) {
  const std::string by_default = Notes("");
  EXPECT_THAT(by_default, HasSubstr("zeroscale.io/inject: \"true\""));
  EXPECT_THAT(by_default, HasSubstr("no namespace label is needed"));
  EXPECT_THAT(by_default, Not(HasSubstr("kubectl label namespace")));
  EXPECT_THAT(by_default, HasSubstr("data-zs-zeroscale-redis-0"));
  const std::string labelled = Notes("--set webhook.onlyLabelledNamespaces=true");
  EXPECT_THAT(labelled,
              HasSubstr("kubectl label namespace <namespace> zeroscale.io/injection=enabled"));
  EXPECT_THAT(Notes("--set webhook.enabled=false"), Not(HasSubstr("zeroscale.io/inject:")));
  EXPECT_THAT(Notes("--set balancer.enabled=false"), Not(HasSubstr("port-forward")));
  EXPECT_THAT(Notes("--set redis.persistence.enabled=false"), HasSubstr("emptyDir"));
}

TEST_F(ChartHelm, LeastPrivilege) {
  const std::vector<YAML::Node> all_namespaces = Objects("");
  EXPECT_NE(Find(all_namespaces, "ClusterRoleBinding", "zs-zeroscale-scaler"), nullptr);
  // One watched namespace: the ClusterRoles are bound there only.
  const std::vector<YAML::Node> one =
      Objects("--set scaler.watchNamespace=ml --set balancer.watchNamespace=ml");
  for (const char* component : {"zs-zeroscale-scaler", "zs-zeroscale-balancer"}) {
    EXPECT_EQ(Find(one, "ClusterRoleBinding", component), nullptr) << component;
    const YAML::Node* binding = Find(one, "RoleBinding", component);
    ASSERT_NE(binding, nullptr) << component;
    EXPECT_EQ((*binding)["metadata"]["namespace"].as<std::string>(), "ml");
  }
  // Checking callers' tokens is cluster-scoped: bound cluster-wide even for one namespace.
  const YAML::Node* reviewer = Find(one, "ClusterRoleBinding", "zs-zeroscale-auth-reviewer");
  ASSERT_NE(reviewer, nullptr);
  EXPECT_THAT(YAML::Dump((*reviewer)["subjects"]), HasSubstr("zs-zeroscale-balancer"));
  const YAML::Node* review_role = Find(one, "ClusterRole", "zs-zeroscale-auth-reviewer");
  ASSERT_NE(review_role, nullptr);
  EXPECT_THAT(YAML::Dump((*review_role)["rules"]), HasSubstr("tokenreviews"));
  EXPECT_THAT(YAML::Dump((*review_role)["rules"]), HasSubstr("subjectaccessreviews"));
  // The balancer may activate, watch, report traffic and list endpoints; nothing else of
  // zeroscale.io. Operators and viewers are bound only to the subjects listed.
  const YAML::Node* activation =
      Find(all_namespaces, "ClusterRole", "zs-zeroscale-balancer-activation");
  ASSERT_NE(activation, nullptr);
  const std::string rules = YAML::Dump((*activation)["rules"]);
  EXPECT_THAT(rules, HasSubstr("workloads/activation"));
  EXPECT_THAT(rules, Not(HasSubstr("scalingrules")));
  EXPECT_THAT(rules, Not(HasSubstr("balancersettings")));
  EXPECT_NE(Find(all_namespaces, "ClusterRole", "zs-zeroscale-operator"), nullptr);
  EXPECT_NE(Find(all_namespaces, "ClusterRole", "zs-zeroscale-viewer"), nullptr);
  EXPECT_EQ(Find(all_namespaces, "ClusterRoleBinding", "zs-zeroscale-operator"), nullptr);
  const std::vector<YAML::Node> ops = Objects(
      "--set auth.operators[0].kind=Group --set auth.operators[0].name=platform "
      "--set auth.operators[0].apiGroup=rbac.authorization.k8s.io");
  const YAML::Node* op_binding = Find(ops, "ClusterRoleBinding", "zs-zeroscale-operator");
  ASSERT_NE(op_binding, nullptr);
  EXPECT_EQ((*op_binding)["subjects"][0]["name"].as<std::string>(), "platform");
  // The balancer presents a projected token for audience zeroscale to the scaler.
  const std::string balancer_pod =
      YAML::Dump((*Find(all_namespaces, "Deployment", "zs-zeroscale-balancer"))["spec"]);
  EXPECT_THAT(balancer_pod, HasSubstr("audience: zeroscale"));
  EXPECT_THAT(balancer_pod,
              HasSubstr("--token-file=/var/run/secrets/zeroscale.io/serviceaccount/token"));
  EXPECT_THAT(balancer_pod, Not(HasSubstr("--insecure")));
  EXPECT_THAT(YAML::Dump((*Find(Objects("--set auth.insecure=true"), "Deployment",
                                "zs-zeroscale-scaler"))["spec"]),
              HasSubstr("--insecure"));
  // The balancer's admin API never rides on the data-plane Service (a LoadBalancer).
  const std::vector<YAML::Node> lb = Objects("--set balancer.service.type=LoadBalancer");
  const YAML::Node* data = Find(lb, "Service", "zs-zeroscale-balancer");
  ASSERT_NE(data, nullptr);
  EXPECT_THAT(YAML::Dump((*data)["spec"]["ports"]), Not(HasSubstr("admin")));
  const YAML::Node* admin = Find(lb, "Service", "zs-zeroscale-balancer-admin");
  ASSERT_NE(admin, nullptr);
  EXPECT_EQ((*admin)["spec"]["type"].as<std::string>(), "ClusterIP");
  // One scaler replica still takes the Lease: a rolling update runs two side by side.
  const std::vector<YAML::Node> single = Objects("--set scaler.replicas=1");
  EXPECT_THAT(YAML::Dump((*Find(single, "Deployment", "zs-zeroscale-scaler"))["spec"]),
              HasSubstr("--leader-elect=true"));
}

// The rule of `role` for `resource`; a null node when none.
YAML::Node RuleFor(const YAML::Node& role, const std::string& resource) {
  for (const YAML::Node& rule : role["rules"]) {
    for (const YAML::Node& r : rule["resources"]) {
      if (r.as<std::string>() == resource) return rule;
    }
  }
  return YAML::Node();
}

std::set<std::string> Strings(const YAML::Node& list) {
  std::set<std::string> out;
  for (const YAML::Node& v : list) out.insert(v.as<std::string>());
  return out;
}

// What the leader-follower wiring needs: the scaler publishes its pod IP on its Lease and
// reads its targets' pods; the balancer follows that one Lease, and may read nothing else
// of coordination.k8s.io.
TEST_F(ChartHelm, TheBalancerFollowsTheScalersLease) {
  for (const std::string& values :
       {std::string(""),
        std::string("--set scaler.watchNamespace=ml --set balancer.watchNamespace=ml")}) {
    SCOPED_TRACE(values.empty() ? "default values" : values);
    const std::vector<YAML::Node> objects = Objects(values);
    const YAML::Node* scaler = Find(objects, "Deployment", "zs-zeroscale-scaler");
    ASSERT_NE(scaler, nullptr);
    const YAML::Node container = (*scaler)["spec"]["template"]["spec"]["containers"][0];
    const std::set<std::string> args = Strings(container["args"]);
    EXPECT_TRUE(args.count("--advertise-address=$(POD_IP):9090")) << YAML::Dump(container["args"]);
    EXPECT_TRUE(args.count("--lease-duration=5s"));
    EXPECT_TRUE(args.count("--renew-deadline=3s"));
    EXPECT_TRUE(args.count("--retry-period=1s"));
    bool pod_ip = false;
    for (const YAML::Node& e : container["env"]) {
      pod_ip |= e["name"].as<std::string>() == "POD_IP" &&
                e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") == "status.podIP";
    }
    EXPECT_TRUE(pod_ip) << "POD_IP comes from the Downward API";
    // The grpc port advertised is the one the container listens on.
    EXPECT_TRUE(args.count("--grpc-listen=0.0.0.0:9090"));

    const YAML::Node* scaler_role = Find(objects, "ClusterRole", "zs-zeroscale-scaler");
    ASSERT_NE(scaler_role, nullptr);
    const YAML::Node pods = RuleFor(*scaler_role, "pods");
    ASSERT_TRUE(pods.IsMap()) << "the scaler watches its targets' pods";
    EXPECT_EQ(Strings(pods["verbs"]), (std::set<std::string>{"get", "list", "watch"}));

    const YAML::Node* balancer = Find(objects, "Deployment", "zs-zeroscale-balancer");
    ASSERT_NE(balancer, nullptr);
    EXPECT_TRUE(Strings((*balancer)["spec"]["template"]["spec"]["containers"][0]["args"])
                    .count("--scaler-lease=zeroscale/zeroscale-scaler"));
    const YAML::Node* lease_role = Find(objects, "Role", "zs-zeroscale-balancer-scaler-lease");
    ASSERT_NE(lease_role, nullptr);
    EXPECT_FALSE((*lease_role)["metadata"]["namespace"]) << "the release's namespace";
    ASSERT_EQ((*lease_role)["rules"].size(), 1u);
    const YAML::Node rule = (*lease_role)["rules"][0];
    EXPECT_EQ(Strings(rule["resourceNames"]), (std::set<std::string>{"zeroscale-scaler"}));
    EXPECT_EQ(Strings(rule["verbs"]), (std::set<std::string>{"get", "list", "watch"}));
    const YAML::Node* binding = Find(objects, "RoleBinding", "zs-zeroscale-balancer-scaler-lease");
    ASSERT_NE(binding, nullptr);
    EXPECT_EQ((*binding)["subjects"][0]["name"].as<std::string>(), "zs-zeroscale-balancer");
    // The balancer's cluster-wide role grants no Lease.
    EXPECT_FALSE(RuleFor(*Find(objects, "ClusterRole", "zs-zeroscale-balancer"), "leases").IsMap());
  }
  const std::vector<YAML::Node> slow = Objects(
      "--set scaler.leaderElection.leaseDuration=15s --set "
      "scaler.leaderElection.renewDeadline=10s --set scaler.leaderElection.retryPeriod=2s");
  EXPECT_THAT(YAML::Dump((*Find(slow, "Deployment", "zs-zeroscale-scaler"))["spec"]),
              AllOf(HasSubstr("--lease-duration=15s"), HasSubstr("--renew-deadline=10s"),
                    HasSubstr("--retry-period=2s")));
}

// Equal as YAML values: maps by key whatever their order (helm's toYaml sorts keys).
bool SameYaml(const YAML::Node& a, const YAML::Node& b) {
  if (a.Type() != b.Type()) return false;
  if (a.IsScalar()) return a.Scalar() == b.Scalar();
  if (a.size() != b.size()) return false;
  if (a.IsSequence()) {
    for (size_t i = 0; i < a.size(); ++i) {
      if (!SameYaml(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.IsMap()) {
    for (const auto& kv : a) {
      const std::string key = kv.first.as<std::string>();
      if (!b[key] || !SameYaml(kv.second, b[key])) return false;
    }
    return true;
  }
  return true;  // null
}

// The PrometheusRule is opt-in and carries exactly the groups of files/alerts.yaml, the
// plain rules file (tests/observe checks those rules with promtool).
TEST_F(ChartHelm, PrometheusRuleIsTheAlertsFile) {
  EXPECT_EQ(Find(Objects(""), "PrometheusRule", "zs-zeroscale-alerts"), nullptr);
  const std::vector<YAML::Node> objects =
      Objects("--set prometheusRule.enabled=true --set prometheusRule.labels.release=prom");
  const YAML::Node* rule = Find(objects, "PrometheusRule", "zs-zeroscale-alerts");
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ((*rule)["apiVersion"].as<std::string>(), "monitoring.coreos.com/v1");
  EXPECT_EQ((*rule)["metadata"]["labels"]["release"].as<std::string>(""), "prom");
  const YAML::Node file = YAML::LoadFile(kChart + "/files/alerts.yaml");
  ASSERT_TRUE(file["groups"].IsSequence());
  EXPECT_TRUE(SameYaml(file["groups"], (*rule)["spec"]["groups"]))
      << "rendered:\n"
      << YAML::Dump((*rule)["spec"]["groups"]);
  int alerts = 0;
  for (const YAML::Node& group : (*rule)["spec"]["groups"]) {
    for (const YAML::Node& r : group["rules"]) {
      ++alerts;
      const std::string name = r["alert"].as<std::string>("");
      EXPECT_FALSE(r["annotations"]["summary"].as<std::string>("").empty()) << name;
      // Prometheus' templates reach the rule unexpanded by helm.
      if (name == "ZeroscaleScalerDown") {
        EXPECT_THAT(r["annotations"]["summary"].as<std::string>(""),
                    HasSubstr("{{ $labels.instance }}"));
      }
      EXPECT_FALSE(r["annotations"]["description"].as<std::string>("").empty()) << name;
      EXPECT_THAT(r["annotations"]["runbook_url"].as<std::string>(""),
                  HasSubstr("README.md#" + absl::AsciiStrToLower(name)))
          << name;
    }
  }
  EXPECT_EQ(alerts, 11);
}

// The dashboard ConfigMap is opt-in, labelled for Grafana's sidecar, and carries
// files/dashboard.json byte for byte (tests/observe checks its metric names).
TEST_F(ChartHelm, GrafanaDashboardIsTheDashboardFile) {
  EXPECT_EQ(Find(Objects(""), "ConfigMap", "zs-zeroscale-dashboard"), nullptr);
  const std::vector<YAML::Node> objects = Objects(
      "--set grafanaDashboard.enabled=true --set grafanaDashboard.annotations.grafana_folder=ml");
  const YAML::Node* map = Find(objects, "ConfigMap", "zs-zeroscale-dashboard");
  ASSERT_NE(map, nullptr);
  EXPECT_EQ((*map)["metadata"]["labels"]["grafana_dashboard"].as<std::string>(""), "1");
  EXPECT_EQ((*map)["metadata"]["annotations"]["grafana_folder"].as<std::string>(""), "ml");
  std::ifstream in(kChart + "/files/dashboard.json");
  std::stringstream file;
  file << in.rdbuf();
  std::string want = file.str();
  while (!want.empty() && want.back() == '\n') want.pop_back();  // |- strips the last newline
  ASSERT_FALSE(want.empty());
  EXPECT_EQ((*map)["data"]["zeroscale.json"].as<std::string>(""), want);
}

// With the ServiceMonitors comes a PodMonitor for the sidecars' /metrics (the dashboard's
// per-pod panels), on the port name the webhook gives the sidecar's admin port; it can be
// left out on its own.
TEST_F(ChartHelm, SidecarsAreScrapedByAPodMonitor) {
  EXPECT_EQ(Find(Objects(""), "PodMonitor", "zs-zeroscale-sidecars"), nullptr);
  const std::vector<YAML::Node> objects = Objects("--set metrics.serviceMonitor.enabled=true");
  const YAML::Node* monitor = Find(objects, "PodMonitor", "zs-zeroscale-sidecars");
  ASSERT_NE(monitor, nullptr);
  EXPECT_TRUE((*monitor)["spec"]["namespaceSelector"]["any"].as<bool>(false));
  const YAML::Node endpoint = (*monitor)["spec"]["podMetricsEndpoints"][0];
  // scaler/webhook/sidecar_patch.cc names the sidecar's admin port so.
  EXPECT_EQ(endpoint["port"].as<std::string>(""), "zeroscale-admin");
  EXPECT_EQ(endpoint["path"].as<std::string>(""), "/metrics");
  EXPECT_EQ(Find(Objects("--set metrics.serviceMonitor.enabled=true "
                         "--set metrics.serviceMonitor.sidecars=false"),
                 "PodMonitor", "zs-zeroscale-sidecars"),
            nullptr);
}

}  // namespace
}  // namespace zeroscale
